// The released model: SmolLM2-135M-Instruct (scripts/setup/get_model.sh) against transformers on chat
// prompts rendered with its own template (tests/python/make_smollm2_reference.py).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tests/unit/test_util.h"
#include "trainer/model/pretrained.h"
#include "trainer/model/safetensors.h"
#include "trainer/rollout/sampler.h"

namespace anchor {
namespace {

TEST(SmolLM2, ChatPromptsLogitsAndGreedyAnswersMatchTransformers) {
  ANCHOR_REQUIRE_FIXTURES();
  SafetensorsFile file(test::test_root() + "/smollm2.reference.safetensors");
  std::map<std::string, at::Tensor> ref;
  for (const auto& [name, _] : file.entries()) ref[name] = file.load(name);
  const Pretrained p = load_pretrained(test::smollm2_dir(), torch::TensorOptions().dtype(torch::kFloat));
  EXPECT_EQ(p.model.num_parameters(), 134515008);

  // The same prompts rendered by anchor-rl's template give transformers' ids.
  const data::ChatTemplate chat = chat_template_for(p, "auto", "data.template");
  const std::vector<std::string> questions = {"What is the capital of France?",
                                              "Explain in one sentence why the sky is blue.",
                                              "Tom has 3 apples and buys 5 more. How many apples does he have?"};
  const at::Tensor ids = ref.at("input_ids"), mask = ref.at("attention_mask").to(torch::kBool);
  std::vector<std::vector<int64_t>> prompts;
  for (int64_t b = 0; b < ids.size(0); ++b) {
    at::Tensor row = ids[b].masked_select(mask[b]).contiguous();
    prompts.emplace_back(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel());
    EXPECT_EQ(encode_prompt(p.tokenizer, chat, chat.apply(questions[static_cast<size_t>(b)])), prompts.back());
  }

  torch::NoGradGuard no_grad;
  const at::Tensor logits = p.model.forward(padded_batch_inputs(ids, ref.at("attention_mask")));
  const at::Tensor tail = logits.slice(1, logits.size(1) - 8);
  const double diff = (tail - ref.at("logits_tail")).abs().max().item<double>();
  const double scale = ref.at("logits_tail").abs().max().item<double>();
  std::printf("[ info ] max |logit difference| %.2e (logits up to %.1f)\n", diff, scale);
  EXPECT_LT(diff, 2e-4);

  SamplingParams params;
  params.temperature = 0.0;
  params.max_new_tokens = ref.at("greedy_tokens").size(1);
  const RolloutBatch out = generate(p.model, p.tokenizer, prompts, params);
  const at::Tensor expected = ref.at("greedy_tokens");
  for (int64_t b = 0; b < ids.size(0); ++b) {
    const int64_t n = out.response_mask[b].sum().item<int64_t>();
    EXPECT_TRUE(torch::equal(out.response_ids[b].slice(0, 0, n), expected[b].slice(0, 0, n)))
        << "prompt " << b << ": anchor-rl answered '" << out.response_texts[static_cast<size_t>(b)] << "'";
  }
  EXPECT_EQ(out.response_texts[0], "The capital of France is Paris.");  // the stop token is not text
}

// SmolLM2's byte-level vocabulary lacks 21 byte values (e.g. 0x04); `tokenizers` drops such a
// byte, and the tokens after it keep their own bytes as spans.
TEST(SmolLM2, SpansSkipBytesTheVocabularyLacks) {
  ANCHOR_REQUIRE_FIXTURES();
  const Tokenizer tok = Tokenizer::load(test::smollm2_dir());
  const Encoding enc = tok.encode_with_spans(std::string("!\x04?"), false);
  EXPECT_EQ(enc.ids, (std::vector<int64_t>{17, 47}));
  EXPECT_EQ(enc.spans, (std::vector<std::pair<size_t, size_t>>{{0, 1}, {2, 3}}));
  const Encoding words = tok.encode_with_spans(std::string("a\x04 b c"), false);
  ASSERT_EQ(words.spans.size(), 3u);
  EXPECT_EQ(words.spans[1], (std::pair<size_t, size_t>{2, 4}));  // " b"
  EXPECT_EQ(words.spans[2], (std::pair<size_t, size_t>{4, 6}));  // " c"
}

}  // namespace
}  // namespace anchor
