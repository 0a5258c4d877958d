// anchor-rl's model against Hugging Face transformers (fixtures from make_hf_fixtures.py).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "tests/unit/test_util.h"
#include "trainer/model/pretrained.h"
#include "trainer/model/safetensors.h"
#include "trainer/rollout/sampler.h"

namespace anchor {
namespace {

using test::error_of;
using test::fixtures_dir;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

const auto kF32 = torch::TensorOptions().dtype(torch::kFloat);

std::map<std::string, at::Tensor> reference(const std::string& arch) {
  SafetensorsFile file((fs::path(fixtures_dir()) / (arch + ".reference.safetensors")).string());
  std::map<std::string, at::Tensor> out;
  for (const auto& [name, _] : file.entries()) out[name] = file.load(name);
  return out;
}

// Max |a - b| over the positions where mask is true (mask [B, T], values [B, T, ...]).
double masked_max_diff(const at::Tensor& a, const at::Tensor& b, const at::Tensor& mask) {
  at::Tensor diff = (a - b).abs();
  while (diff.dim() > 2) diff = std::get<0>(diff.max(-1));
  return diff.masked_select(mask.to(torch::kBool)).max().item<double>();
}

class HfArch : public ::testing::TestWithParam<std::string> {};

TEST_P(HfArch, LogitsMatchTransformersOnPaddedBatch) {
  ANCHOR_REQUIRE_FIXTURES();
  const auto ref = reference(GetParam());
  LlamaModel model = load_model((fs::path(fixtures_dir()) / GetParam()).string(), kF32);
  torch::NoGradGuard no_grad;
  at::Tensor logits = model.forward(padded_batch_inputs(ref.at("input_ids"), ref.at("attention_mask")));
  ASSERT_EQ(logits.sizes(), ref.at("logits").sizes());
  EXPECT_LT(masked_max_diff(logits, ref.at("logits"), ref.at("attention_mask")), 1e-4);
}

TEST_P(HfArch, GreedyGenerationMatchesTransformersGenerate) {
  ANCHOR_REQUIRE_FIXTURES();
  const auto ref = reference(GetParam());
  Pretrained p = load_pretrained((fs::path(fixtures_dir()) / GetParam()).string(), kF32);
  const at::Tensor ids = ref.at("gen_prompt_ids"), mask = ref.at("gen_prompt_mask").to(torch::kBool);
  std::vector<std::vector<int64_t>> prompts;
  for (int64_t b = 0; b < ids.size(0); ++b) {
    at::Tensor row = ids[b].masked_select(mask[b]).contiguous();
    prompts.emplace_back(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel());
  }
  SamplingParams params;
  params.temperature = 0.0;
  params.max_new_tokens = ref.at("greedy_tokens").size(1);
  params.stop_token_ids = {2};
  RolloutBatch out = generate(p.model, p.tokenizer, prompts, params);
  const at::Tensor expected = ref.at("greedy_tokens");
  for (int64_t b = 0; b < ids.size(0); ++b) {
    const int64_t n = out.response_mask[b].sum().item<int64_t>();
    EXPECT_TRUE(torch::equal(out.response_ids[b].slice(0, 0, n), expected[b].slice(0, 0, n)))
        << "row " << b << "\nanchor-rl: " << out.response_ids[b].slice(0, 0, n) << "\nHF: " << expected[b];
    if (n < expected.size(1)) EXPECT_EQ(expected[b][n - 1].item<int64_t>(), 2) << "stopped early without EOS";
  }
}

TEST_P(HfArch, ObservedAttentionEqualsTransformersEagerAttention) {
  ANCHOR_REQUIRE_FIXTURES();
  const auto ref = reference(GetParam());
  LlamaModel model = load_model((fs::path(fixtures_dir()) / GetParam()).string(), kF32);
  struct Collect : AttentionObserver {
    at::Tensor full;
    bool observes_layer(int64_t layer) const override { return layer == 1; }
    int64_t chunk_rows() const override { return 5; }  // 14 rows -> chunks of 5, 5, 4
    void on_chunk(const AttentionChunk& c) override {
      full.slice(2, c.query_begin, c.query_begin + c.probs.size(2)).slice(3, 0, c.probs.size(3)).copy_(c.probs);
    }
  } collect;
  const at::Tensor expected = ref.at("attentions_layer1");
  collect.full = torch::zeros(expected.sizes());  // keys after a chunk are left out: they are 0
  torch::NoGradGuard no_grad;
  ForwardInputs in = padded_batch_inputs(ref.at("input_ids"), ref.at("attention_mask"));
  at::Tensor plain = model.forward(in);
  in.observer = &collect;
  at::Tensor observed = model.forward(in);
  EXPECT_LT((plain - observed).abs().max().item<double>(), 1e-5) << "observing changed the output";
  // Compare rows of real query tokens (HF's rows for padded queries are arbitrary).
  at::Tensor query_mask = ref.at("attention_mask").to(torch::kBool).unsqueeze(1).unsqueeze(-1).expand_as(expected);
  EXPECT_LT((collect.full - expected).abs().masked_select(query_mask).max().item<double>(), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Architectures, HfArch,
                         ::testing::Values("llama_gqa_tied", "llama3_rope_untied", "qwen2_linear_rope", "qwen2_bpe",
                                           "qwen3_tiny"));

TEST(HfCheckpoint, Bf16F16AndShardedCheckpointsLoad) {
  ANCHOR_REQUIRE_FIXTURES();
  const fs::path dir(fixtures_dir());
  LlamaModel f32 = load_model((dir / "llama_gqa_tied").string(), kF32);
  LlamaModel sharded = load_model((dir / "llama_gqa_tied_sharded").string(), kF32);
  LlamaModel bf16 = load_model((dir / "llama_gqa_tied_bf16").string(), kF32);
  LlamaModel f16 = load_model((dir / "llama_gqa_tied_f16").string(), kF32);
  const auto a = f32.named_parameters(), s = sharded.named_parameters(), b = bf16.named_parameters(),
             h = f16.named_parameters();
  ASSERT_EQ(a.size(), s.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(torch::equal(a[i].second, s[i].second)) << a[i].first;
    EXPECT_TRUE(torch::equal(a[i].second.to(torch::kBFloat16).to(torch::kFloat), b[i].second)) << a[i].first;
    EXPECT_TRUE(torch::equal(a[i].second.to(torch::kHalf).to(torch::kFloat), h[i].second)) << a[i].first;
  }
}

// --- error cases: each names the file and the tensor ------------------------------------

std::map<std::string, at::Tensor> read_all(const fs::path& file) {
  SafetensorsFile f(file.string());
  std::map<std::string, at::Tensor> out;
  for (const auto& [name, _] : f.entries()) out[name] = f.load(name);
  return out;
}

void rewrite(const fs::path& file, const std::map<std::string, at::Tensor>& tensors) {
  NamedTensors list(tensors.begin(), tensors.end());
  write_safetensors(file.string(), list);
}

TEST(HfCheckpointErrors, MissingTensor) {
  ANCHOR_REQUIRE_FIXTURES();
  const fs::path dir = test::copy_fixture("llama_gqa_tied", "err_missing");
  auto tensors = read_all(dir / "model.safetensors");
  tensors.erase("model.layers.1.mlp.up_proj.weight");
  rewrite(dir / "model.safetensors", tensors);
  const std::string msg = error_of([&] { load_model(dir.string(), kF32); });
  EXPECT_THAT(msg, HasSubstr(dir.string()));
  EXPECT_THAT(msg, HasSubstr("missing tensor 'model.layers.1.mlp.up_proj.weight'"));
}

TEST(HfCheckpointErrors, UnexpectedTensor) {
  ANCHOR_REQUIRE_FIXTURES();
  const fs::path dir = test::copy_fixture("llama_gqa_tied", "err_unexpected");
  auto tensors = read_all(dir / "model.safetensors");
  tensors["model.layers.7.self_attn.q_proj.weight"] = torch::zeros({2, 2});
  rewrite(dir / "model.safetensors", tensors);
  const std::string msg = error_of([&] { load_model(dir.string(), kF32); });
  EXPECT_THAT(msg, HasSubstr((dir / "model.safetensors").string()));
  EXPECT_THAT(msg, HasSubstr("unexpected tensor 'model.layers.7.self_attn.q_proj.weight'"));
}

TEST(HfCheckpointErrors, ShapeMismatch) {
  ANCHOR_REQUIRE_FIXTURES();
  const fs::path dir = test::copy_fixture("llama_gqa_tied", "err_shape");
  auto tensors = read_all(dir / "model.safetensors");
  tensors["model.layers.0.self_attn.k_proj.weight"] = torch::zeros({8, 64});
  rewrite(dir / "model.safetensors", tensors);
  const std::string msg = error_of([&] { load_model(dir.string(), kF32); });
  EXPECT_THAT(msg, HasSubstr("model.safetensors: tensor 'model.layers.0.self_attn.k_proj.weight' has shape [8, 64]"));
  EXPECT_THAT(msg, HasSubstr("config.json implies [32, 64]"));
}

TEST(HfCheckpointErrors, UnsupportedArchitecture) {
  ANCHOR_REQUIRE_FIXTURES();
  const fs::path dir = test::copy_fixture("llama_gqa_tied", "err_arch");
  auto config = nlohmann::json::parse(std::ifstream(dir / "config.json"));
  config["architectures"] = {"MixtralForCausalLM"};
  config["model_type"] = "mixtral";
  std::ofstream(dir / "config.json") << config.dump();
  const std::string msg = error_of([&] { load_model(dir.string(), kF32); });
  EXPECT_THAT(msg, HasSubstr((dir / "config.json").string()));
  EXPECT_THAT(msg, HasSubstr("unsupported architecture"));
}

TEST(HfCheckpointErrors, TruncatedAndCorruptFiles) {
  ANCHOR_REQUIRE_FIXTURES();
  const fs::path dir = test::copy_fixture("llama_gqa_tied", "err_truncated");
  const fs::path file = dir / "model.safetensors";
  fs::resize_file(file, fs::file_size(file) / 2);
  std::string msg = error_of([&] { load_model(dir.string(), kF32); });
  EXPECT_THAT(msg, HasSubstr(file.string()));
  EXPECT_THAT(msg, HasSubstr("truncated"));
  EXPECT_THAT(msg, HasSubstr("tensor '"));

  std::ofstream(file, std::ios::binary | std::ios::trunc) << std::string("\x10\0\0\0\0\0\0\0{\"a\": garbage!!}", 24);
  msg = error_of([&] { load_model(dir.string(), kF32); });
  EXPECT_THAT(msg, HasSubstr(file.string()));
  EXPECT_THAT(msg, HasSubstr("corrupt safetensors header"));

  std::ofstream(dir / "config.json") << "{\"vocab_size\": 12,\n \"hidden_size\": }";
  msg = error_of([&] { load_model(dir.string(), kF32); });
  EXPECT_THAT(msg, HasSubstr((dir / "config.json").string() + ":2:"));
}

// --- writing: anchor-rl's checkpoint reloads identically (transformers side: check_hf_load.py)

TEST(HfCheckpoint, SaveReloadIsExactAndWritesFilesForTransformers) {
  ANCHOR_REQUIRE_FIXTURES();
  const auto ref = reference("llama3_rope_untied");
  Pretrained p = load_pretrained((fs::path(fixtures_dir()) / "llama3_rope_untied").string(), kF32);
  const int64_t good = p.tokenizer.add_special_token("<|good|>");
  p.model.resize_vocab(p.tokenizer.vocab_size(), 1e-3, 1);
  const fs::path out = test::scratch_dir("anchor_saved_model");
  save_pretrained(p, out.string(), /*max_shard_bytes=*/20000);
  EXPECT_TRUE(fs::exists(out / "model.safetensors.index.json"));
  Pretrained q = load_pretrained(out.string(), kF32);
  EXPECT_EQ(q.tokenizer.token_id("<|good|>"), p.tokenizer.vocab_size() - 1);
  torch::NoGradGuard no_grad;
  const ForwardInputs in = padded_batch_inputs(ref.at("input_ids"), ref.at("attention_mask"));
  at::Tensor a = p.model.forward(in), b = q.model.forward(in);
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_EQ(a.size(-1), good + 1);
  // The logits transformers must reproduce from the saved directory.
  write_safetensors((out / "anchor_logits.safetensors").string(),
                    {{"input_ids", ref.at("input_ids")}, {"attention_mask", ref.at("attention_mask")}, {"logits", a}});
}

// A tokenizer.json model (Qwen3) with an added special token: tokenizer files, added token and
// generation config survive the save; transformers checks the ids and logits.
TEST(HfCheckpoint, BpeModelWithAddedTokenSavesForTransformers) {
  ANCHOR_REQUIRE_FIXTURES();
  const auto ref = reference("qwen3_tiny");
  Pretrained p = load_pretrained((fs::path(fixtures_dir()) / "qwen3_tiny").string(), kF32);
  const int64_t good = p.tokenizer.add_special_token("<|good|>");
  p.model.resize_vocab(p.tokenizer.vocab_size(), 1e-3, 1);
  const fs::path out = test::scratch_dir("anchor_saved_bpe_model");
  save_pretrained(p, out.string());
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "generation_config.json", "config.json"})
    EXPECT_TRUE(fs::exists(out / f)) << f;
  Pretrained q = load_pretrained(out.string(), kF32);
  const std::string text = "<|good|>Café ✓ 12 + 7 = 19.<|im_end|>";
  const auto ids = q.tokenizer.encode(text, true);
  EXPECT_EQ(ids, p.tokenizer.encode(text, true));
  EXPECT_EQ(ids.front(), good);
  torch::NoGradGuard no_grad;
  const ForwardInputs in = padded_batch_inputs(ref.at("input_ids"), ref.at("attention_mask"));
  at::Tensor a = p.model.forward(in), b = q.model.forward(in);
  EXPECT_TRUE(torch::equal(a, b));
  write_safetensors((out / "anchor_logits.safetensors").string(),
                    {{"input_ids", ref.at("input_ids")}, {"attention_mask", ref.at("attention_mask")}, {"logits", a},
                     {"text_ids", torch::tensor(ids, torch::kLong)}});
  std::ofstream(out / "anchor_text.txt") << text;
}

}  // namespace
}  // namespace anchor
