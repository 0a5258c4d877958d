// SFT modes (docs/design.md §6): data transformations with exact strings and ids, the context-dependency
// score by hand and against transformers' eager attentions, embedding initialisation of added
// tokens, and the extended model saved for transformers (tests/python/check_hf_loads_anchor_checkpoint.py).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "data/sft_dataset.h"
#include "rewards/arithmetic_claims.h"
#include "rewards/reward_function.h"
#include "tests/unit/test_util.h"
#include "trainer/config/train_config.h"
#include "trainer/model/pretrained.h"
#include "trainer/model/safetensors.h"
#include "trainer/rollout/sampler.h"
#include "trainer/sft/context_dependency.h"
#include "trainer/rollout/generation_control.h"
#include "trainer/sft/control_text.h"
#include "trainer/sft/sft_data.h"
#include "trainer/sft/sft_examples.h"
#include "trainer/sft/vocabulary_extension.h"

namespace anchor {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using anchor::Control;
using sft::LabeledSentence;
using test::error_of;

const auto kF32 = torch::TensorOptions().dtype(torch::kFloat);

std::vector<LabeledSentence> label(const std::string& text, const std::vector<Control>& controls) {
  std::vector<LabeledSentence> out;
  const auto ranges = sft::target_sentences(text, 1);
  EXPECT_EQ(ranges.size(), controls.size()) << text;
  for (size_t k = 0; k < ranges.size() && k < controls.size(); ++k)
    out.push_back({ranges[k].first, ranges[k].second, 0.0, controls[k]});
  return out;
}

// --- text transformations

TEST(ControlText, TokensGoBeforeTheWhitespaceThatStartsEachSentence) {
  EXPECT_EQ(sft::with_control_tokens("A. B.", label("A. B.", {Control::good, Control::bad})), "<|good|>A.<|bad|> B.");
  EXPECT_EQ(sft::with_control_tokens("We have 3 + 4 = 7. Then 7 + 5 = 13.\n\nSo 12!",
                                     label("We have 3 + 4 = 7. Then 7 + 5 = 13.\n\nSo 12!",
                                           {Control::good, Control::bad, Control::none})),
            "<|good|>We have 3 + 4 = 7.<|bad|> Then 7 + 5 = 13.\n\nSo 12!");
  EXPECT_EQ(sft::with_control_tokens("One sentence", label("One sentence", {Control::bad})), "<|bad|>One sentence");
  EXPECT_EQ(sft::with_control_tokens("  Lead. Two?  ", label("  Lead. Two?  ", {Control::good, Control::good})),
            "<|good|>  Lead.<|good|> Two?  ");
  EXPECT_EQ(sft::with_control_tokens("", {}), "");
}

TEST(ControlText, IndicatorPlacement) {
  EXPECT_EQ(with_indicator("Who wrote it"), "Who wrote it. [IND]");
  EXPECT_EQ(with_indicator("Answer with the year 1984"), "Answer with the year 1984. [IND]");
  EXPECT_EQ(with_indicator("Why?"), "Why? [IND]");
  EXPECT_EQ(with_indicator("Done."), "Done. [IND]");
  EXPECT_EQ(with_indicator("Summarise: \"x\""), "Summarise: \"x\" [IND]");
  EXPECT_EQ(with_indicator("Trailing space  \n"), "Trailing space. [IND]");
}

TEST(ControlText, PercentileIsNumpyLinear) {
  EXPECT_DOUBLE_EQ(sft::score_percentile({4, 1, 3, 2}, 25), 1.75);  // numpy.percentile([1,2,3,4], 25)
  EXPECT_DOUBLE_EQ(sft::score_percentile({4, 1, 3, 2}, 50), 2.5);
  EXPECT_DOUBLE_EQ(sft::score_percentile({4, 1, 3, 2}, 0), 1.0);
  EXPECT_DOUBLE_EQ(sft::score_percentile({4, 1, 3, 2}, 100), 4.0);
  EXPECT_DOUBLE_EQ(sft::score_percentile({7}, 30), 7.0);
  EXPECT_THAT(error_of([] { sft::score_percentile({}, 10); }), HasSubstr("no scores"));
}

TEST(ControlText, UnconditionedSentencesAreASeededFraction) {
  // Expected draws from an independent Python implementation of the same splitmix64 hash.
  std::vector<std::pair<int64_t, int64_t>> dropped;
  for (int64_t r = 0; r < 200; ++r)
    for (int64_t s = 0; s < 5; ++s)
      if (sft::leaves_unconditioned(0, r, s, 0.01)) dropped.emplace_back(r, s);
  const std::vector<std::pair<int64_t, int64_t>> expected = {{57, 3}, {66, 4}, {111, 4}, {124, 0}, {158, 0},
                                                             {164, 4}, {176, 4}, {183, 4}, {188, 0}};
  EXPECT_EQ(dropped, expected);
  int64_t count = 0;
  for (int64_t r = 0; r < 1000; ++r)
    for (int64_t s = 0; s < 10; ++s) count += sft::leaves_unconditioned(0, r, s, 0.1);
  EXPECT_EQ(count, 1042);
  EXPECT_FALSE(sft::leaves_unconditioned(3, 1, 2, 0.0));
  EXPECT_TRUE(sft::leaves_unconditioned(3, 1, 2, 1.0));
}

TEST(ArithmeticClaims, FindsAndChecksClaims) {
  const auto claims = rewards::find_arithmetic_claims("So 3 + 4 = 7, 7+5=13, 12 × 3 = 36, 10 / 4 = 2, 5 - 9 = -4.");
  ASSERT_EQ(claims.size(), 5u);
  EXPECT_TRUE(claims[0].holds);
  EXPECT_EQ(claims[0].a, 3);
  EXPECT_EQ(claims[0].b, 4);
  EXPECT_EQ(claims[0].c, 7);
  EXPECT_FALSE(claims[1].holds);
  EXPECT_EQ(claims[1].c, 13);
  EXPECT_TRUE(claims[2].holds);
  EXPECT_EQ(claims[2].op, '*');
  EXPECT_FALSE(claims[3].holds);  // not exact
  EXPECT_TRUE(claims[4].holds);
  EXPECT_EQ(claims[4].c, -4);
  EXPECT_TRUE(rewards::find_arithmetic_claims("1.5 + 2 = 3.5, x2 + 3 = 5, 3 + = 4, 99999999999999999999 + 1 = 2").empty());
  const rewards::CompositeReward reward({{"arithmetic_claims"}});
  const nlohmann::json row = nlohmann::json::object();
  EXPECT_EQ(reward.score({"", "We have 3 + 4 = 7.", row}).total, 1.0);
  EXPECT_EQ(reward.score({"", "Then 7 + 5 = 13.", row}).total, 0.0);
  EXPECT_EQ(reward.score({"", "No claims here.", row}).total, 1.0);
}

// --- datasets and configs

fs::path write_jsonl(const std::string& name, const std::string& body) {
  const fs::path dir = test::scratch_dir("sft_" + name);
  std::ofstream(dir / "data.jsonl") << body;
  return dir / "data.jsonl";
}

TEST(SftDataset, RowShapesAndErrorsWithFileLine) {
  const fs::path ok = write_jsonl("shapes", R"({"prompt": "p", "response": "r"}

{"text": "t"}
{"messages": [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}], "score": [1]}
)");
  const auto ds = data::SftDataset::load_jsonl(ok.string(), {});
  ASSERT_EQ(ds.size(), 3u);
  EXPECT_EQ(ds[0].kind, data::SftRecord::Kind::prompt_response);
  EXPECT_EQ(ds[0].messages.at(1).content, "r");
  EXPECT_EQ(ds[1].kind, data::SftRecord::Kind::text);
  EXPECT_EQ(ds[1].line, 3);
  EXPECT_EQ(ds[2].kind, data::SftRecord::Kind::messages);
  EXPECT_EQ(ds[2].row.at("score"), nlohmann::json::array({1}));
  auto error = [](const std::string& name, const std::string& body) {
    const fs::path p = write_jsonl(name, body);
    return std::make_pair(p.string(), error_of([&] { data::SftDataset::load_jsonl(p.string(), {}); }));
  };
  auto [p1, e1] = error("no_response", "{\"text\": \"t\"}\n{\"prompt\": \"p\"}\n");
  EXPECT_THAT(e1, HasSubstr(p1 + ":2: a prompt/response row needs both 'prompt'"));
  auto [p2, e2] = error("none", "{\"answer\": 3}\n");
  EXPECT_THAT(e2, HasSubstr(p2 + ":1: expected 'messages', 'prompt' + 'response', or 'text'"));
  auto [p3, e3] = error("no_assistant", R"({"messages": [{"role": "user", "content": "u"}]})");
  EXPECT_THAT(e3, HasSubstr(p3 + ":1: the conversation has no assistant turn"));
  auto [p4, e4] = error("bad_json", "{\"text\": \"t\"}\n{\"text\": \n");
  EXPECT_THAT(e4, HasSubstr(p4 + ":2: not valid JSON"));
  auto [p5, e5] = error("not_string", "{\"text\": 5}\n");
  EXPECT_THAT(e5, HasSubstr(p5 + ":1: field 'text' must be a string"));
  auto [p6, e6] = error("bad_role", R"({"messages": [{"role": "robot", "content": "u"}]})");
  EXPECT_THAT(e6, HasSubstr(p6 + ":1"));
}

TEST(SftConfig, NestedKeysValidateAndOverride) {
  const std::string base = "model: {path: m}\ndata: {train: t.jsonl}\n";
  TrainConfig c = parse_train_config(base + "sft:\n  mode: conditional\n  conditional:\n    threshold: 0.25\n", "x.yaml",
                                     {"sft.conditional.unconditioned_fraction=0.5", "sft.context_indicator.layer=3"},
                                     ConfigUse::sft);
  EXPECT_EQ(c.sft.mode, SftMode::conditional);
  EXPECT_EQ(c.sft.conditional.threshold, 0.25);
  EXPECT_EQ(c.sft.conditional.unconditioned_fraction, 0.5);
  EXPECT_EQ(c.sft.context_indicator.layer, 3);
  EXPECT_THAT(train_config_to_yaml(c), HasSubstr("conditional:\n    scorer: \"arithmetic_claims\""));
  EXPECT_THAT(error_of([&] { parse_train_config(base + "sft:\n  conditional:\n    treshold: 1\n", "x.yaml", {}, ConfigUse::sft); }),
              HasSubstr("x.yaml: unknown key 'sft.conditional.treshold' (line 5)"));
  EXPECT_THAT(error_of([&] {
                parse_train_config(base + "sft:\n  conditional:\n    threshold_percentile: 150\n", "x.yaml", {}, ConfigUse::sft);
              }),
              HasSubstr("x.yaml: sft.conditional.threshold_percentile: must be in [0, 100]"));
  EXPECT_THAT(error_of([&] {
                parse_train_config(base + "sft:\n  conditional:\n    scorer: truthiness\n", "x.yaml", {}, ConfigUse::sft);
              }),
              HasSubstr("sft.conditional.scorer: 'truthiness' is not a reward component (expected field or one of:"));
  EXPECT_THAT(error_of([&] { parse_train_config(base, "x.yaml", {"sft.context_indicator.beta=2"}, ConfigUse::sft); }),
              HasSubstr("sft.context_indicator.beta: must be in [0, 1]"));
  EXPECT_THAT(error_of([&] { parse_train_config(base, "x.yaml", {"sft.mode=pretrain"}, ConfigUse::sft); }),
              HasSubstr("sft.mode must be one of plain, conditional, context_indicator, got 'pretrain' (--set)"));
  EXPECT_THAT(error_of([&] { parse_train_config(base, "x.yaml", {"rollout.control=great"}, ConfigUse::sft); }),
              HasSubstr("rollout.control must be one of none, good, bad, got 'great' (--set)"));
  EXPECT_THAT(error_of([&] { parse_train_config(base, "x.yaml", {"sft.mode.x=1"}, ConfigUse::sft); }),
              HasSubstr("x.yaml: sft.mode must be one of plain, conditional, context_indicator"));
}

// --- the released tokenizer: ids match transformers' (values from AutoTokenizer with the
// same added special tokens)

TEST(SftData, ConditionalIdsOnSmolLM2MatchTransformers) {
  ANCHOR_REQUIRE_FIXTURES();
  Pretrained p = load_pretrained(test::smollm2_dir(), kF32);
  const int64_t rows_before = p.model.config().vocab_size;
  const fs::path path = write_jsonl("conditional_smollm2",
                                    R"({"prompt": "Add", "response": "We have 3 + 4 = 7. Then 7 + 5 = 13. So the sum is 12."}
{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello. 1 + 1 = 3."}]}
)");
  TrainConfig cfg = parse_train_config("model: {path: m}\ndata: {train: t.jsonl}\n", "x.yaml",
                                       {"sft.mode=conditional", "sft.conditional.unconditioned_fraction=0"}, ConfigUse::sft);
  const data::ChatTemplate chat = chat_template_for(p, "auto", "data.template");
  const sft::PreparedSft prep = sft::prepare_sft_data(cfg, data::SftDataset::load_jsonl(path.string(), {}), p, chat);
  EXPECT_EQ(p.tokenizer.token_id("<|good|>"), 49152);
  EXPECT_EQ(p.tokenizer.token_id("<|bad|>"), 49153);
  EXPECT_EQ(p.model.config().vocab_size, rows_before + 2);
  const std::vector<int64_t> response = {49152, 1882, 457, 216, 35, 1232, 216, 36, 446, 216, 39, 30,
                                         49153, 3875, 216, 39, 1232, 216, 37, 446, 216, 33, 35, 30,
                                         49152, 1644, 260, 2028, 314, 216, 33, 34, 30};
  std::vector<int64_t> target = response;
  target.push_back(p.tokenizer.eos_id());
  EXPECT_EQ(prep.examples[0].target_ids, target);
  EXPECT_EQ(prep.examples[0].prompt_ids, encode_prompt(p.tokenizer, chat, chat.apply("Add")));
  EXPECT_EQ(prep.records[0].messages[1].content, "<|good|>We have 3 + 4 = 7.<|bad|> Then 7 + 5 = 13.<|good|> So the sum is 12.");
  // transformers' apply_chat_template of the labelled conversation.
  const std::vector<int64_t> chat_ids = {1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28,
                                         7018, 411, 407, 19712, 8182, 2, 198, 1, 4093, 198, 26843, 2, 198, 1, 520, 9531,
                                         198, 49152, 19556, 30, 49153, 216, 33, 1232, 216, 33, 446, 216, 35, 30, 2, 198};
  std::vector<int64_t> all = prep.examples[1].prompt_ids;
  all.insert(all.end(), prep.examples[1].target_ids.begin(), prep.examples[1].target_ids.end());
  EXPECT_EQ(all, chat_ids);
  // The loss covers the assistant turn: its text and the end-of-turn marker.
  std::vector<int64_t> in_loss;
  for (size_t t = 0; t < prep.examples[1].target_ids.size(); ++t)
    if (prep.examples[1].target_loss[t]) in_loss.push_back(prep.examples[1].target_ids[t]);
  EXPECT_EQ(in_loss, std::vector<int64_t>(chat_ids.begin() + 31, chat_ids.end()));
  EXPECT_EQ(prep.summary["conditional"]["good"], 3);
  EXPECT_EQ(prep.summary["conditional"]["bad"], 2);

  // mask_control_tokens: the control tokens stay inputs but leave the loss.
  Pretrained q = load_pretrained(test::smollm2_dir(), kF32);
  cfg.sft.conditional.mask_control_tokens = true;
  const sft::PreparedSft masked = sft::prepare_sft_data(cfg, data::SftDataset::load_jsonl(path.string(), {}), q, chat);
  EXPECT_EQ(masked.examples[0].target_ids, target);
  EXPECT_EQ(masked.examples[0].loss_tokens(), static_cast<int64_t>(target.size()) - 3);
}

TEST(SftData, IndicatorIdOnSmolLM2MatchesTransformers) {
  ANCHOR_REQUIRE_FIXTURES();
  Pretrained p = load_pretrained(test::smollm2_dir(), kF32);
  const auto ids = sft::add_special_tokens(p, {"<|good|>", "<|bad|>", "[IND]"}, 0.0, 0);
  EXPECT_EQ(ids, (std::vector<int64_t>{49152, 49153, 49154}));
  EXPECT_EQ(p.tokenizer.encode(with_indicator("Who wrote it"), false),
            (std::vector<int64_t>{10576, 4150, 357, 30, 216, 49154}));
}

TEST(SftData, FieldScoresAndPercentileThreshold) {
  Pretrained p = load_pretrained(std::string(ANCHOR_SOURCE_DIR_FOR_TESTS) + "data/demo-model", kF32);
  const fs::path path = write_jsonl("field_scores", R"({"text": "A one. B two. C three.", "score": [0.1, 0.9, 0.5]}
{"text": "D four.", "score": 0.3}
)");
  TrainConfig cfg = parse_train_config(
      "model: {path: m}\ndata: {train: t.jsonl, template: plain}\n", "x.yaml",
      {"sft.mode=conditional", "sft.conditional.scorer=field", "sft.conditional.threshold_percentile=50",
       "sft.conditional.unconditioned_fraction=0"},
      ConfigUse::sft);
  const data::ChatTemplate chat = chat_template_for(p, "plain", "data.template");
  const sft::PreparedSft prep = sft::prepare_sft_data(cfg, data::SftDataset::load_jsonl(path.string(), {}), p, chat);
  // Scores 0.1 0.9 0.5 0.3: the median is 0.4; good means score >= 0.4.
  EXPECT_DOUBLE_EQ(prep.summary["conditional"]["threshold"].get<double>(), 0.4);
  EXPECT_EQ(prep.records[0].messages[0].content, "<|bad|>A one.<|good|> B two.<|good|> C three.");
  EXPECT_EQ(prep.records[1].messages[0].content, "<|bad|>D four.");
  const fs::path wrong = write_jsonl("field_scores_wrong", R"({"text": "A one. B two.", "score": [1]})");
  Pretrained q = load_pretrained(std::string(ANCHOR_SOURCE_DIR_FOR_TESTS) + "data/demo-model", kF32);
  EXPECT_THAT(error_of([&] { sft::prepare_sft_data(cfg, data::SftDataset::load_jsonl(wrong.string(), {}), q, chat); }),
              HasSubstr(wrong.string() + ":1: field 'score' has 1 scores but the target text has 2 sentences"));
}

// --- context-dependency score

TEST(ContextDependency, HandWrittenAttention) {
  // B = 1, H = 2, N = 4. Keys 0-1 are the user message, queries 2-3 the response.
  const at::Tensor probs = torch::tensor({1.0, 0.0, 0.0, 0.0,    //
                                          0.5, 0.5, 0.0, 0.0,    //
                                          0.2, 0.3, 0.5, 0.0,    // head 0, query 2: mass 0.5
                                          0.1, 0.1, 0.4, 0.4,    // head 0, query 3: mass 0.2
                                          1.0, 0.0, 0.0, 0.0,    //
                                          0.5, 0.5, 0.0, 0.0,    //
                                          0.6, 0.1, 0.3, 0.0,    // head 1, query 2: mass 0.7
                                          0.0, 0.1, 0.1, 0.8},   // head 1, query 3: mass 0.1
                                         torch::kDouble)
                                .view({1, 2, 4, 4});
  const at::Tensor user = torch::tensor({true, true, false, false}).view({1, 4});
  const at::Tensor response = torch::tensor({false, false, true, true}).view({1, 4});
  // max over heads: query 2 -> 0.7, query 3 -> 0.2; mean 0.45.
  EXPECT_NEAR(sft::context_dependency_scores(probs, user, response)[0].item<double>(), 0.45, 1e-12);
  // Only key 1 as the user message (e.g. key 0 is BOS): 0.3 / 0.1 vs 0.1 / 0.1 -> (0.3 + 0.1) / 2.
  EXPECT_NEAR(sft::context_dependency_scores(probs, torch::tensor({false, true, false, false}).view({1, 4}), response)[0]
                  .item<double>(),
              0.2, 1e-12);
  // The observer, fed the same rows in chunks of one row, reduces to the same value.
  sft::ContextDependencyObserver observer(0, user, response);
  for (int64_t q = 0; q < 4; ++q) {
    AttentionChunk chunk;
    chunk.layer = 0;
    chunk.query_begin = q;
    chunk.probs = probs.slice(2, q, q + 1).slice(3, 0, q + 1).to(torch::kFloat);
    observer.on_chunk(chunk);
  }
  EXPECT_NEAR(observer.scores()[0].item<double>(), 0.45, 1e-6);
}

// The observer on the model's own forward against a naive reduction of transformers' eager
// attention probabilities (layer 1 of each fixture architecture).
TEST(ContextDependency, MatchesNaiveScoreFromTransformersAttentions) {
  ANCHOR_REQUIRE_FIXTURES();
  for (const std::string arch : {"llama_gqa_tied", "qwen3_tiny"}) {
    SafetensorsFile file((fs::path(test::fixtures_dir()) / (arch + ".reference.safetensors")).string());
    const at::Tensor ids = file.load("input_ids");  // row 1 is left-padded by 4
    const at::Tensor attn = file.load("attentions_layer1").to(torch::kDouble);  // [2, H, 14, 14]
    LlamaModel model = load_model((fs::path(test::fixtures_dir()) / arch).string(), kF32);
    std::vector<sft::ScoredTurn> turns;
    std::vector<double> expected;
    for (int64_t b = 0; b < 2; ++b) {
      const int64_t pad = b == 0 ? 0 : 4, n = ids.size(1) - pad;
      sft::ScoredTurn t;
      for (int64_t j = pad; j < ids.size(1); ++j) t.ids.push_back(ids[b][j].item<int64_t>());
      // user tokens: real positions 1..4 (position 0 plays BOS), response: the last 5.
      for (int64_t j = 0; j < n; ++j) {
        t.user.push_back(j >= 1 && j <= 4);
        t.response.push_back(j >= n - 5);
      }
      turns.push_back(t);
      at::Tensor user = torch::zeros({1, ids.size(1)}, torch::kBool), response = torch::zeros({1, ids.size(1)}, torch::kBool);
      user.slice(1, pad + 1, pad + 5).fill_(true);
      response.slice(1, ids.size(1) - 5).fill_(true);
      expected.push_back(sft::context_dependency_scores(attn.slice(0, b, b + 1), user, response)[0].item<double>());
    }
    const std::vector<double> got = sft::score_context_dependency(model, turns, 1, 2);
    ASSERT_EQ(got.size(), 2u);
    for (size_t b = 0; b < 2; ++b) {
      EXPECT_NEAR(got[b], expected[b], 1e-5) << arch << " row " << b;
      EXPECT_GT(expected[b], 0.0);
    }
  }
}

// --- added tokens: embedding rows, save / reload, and the files transformers checks

TEST(VocabularyExtension, NewRowsAreTheMeanPlusNoiseTiedAndUntied) {
  ANCHOR_REQUIRE_FIXTURES();
  for (const std::string arch : {"llama_gqa_tied", "llama3_rope_untied"}) {
    Pretrained p = load_pretrained((fs::path(test::fixtures_dir()) / arch).string(), kF32);
    const int64_t base = p.tokenizer.vocab_size();
    const at::Tensor embed_mean = p.model.named_parameters().front().second.slice(0, 0, base).mean(0);
    const at::Tensor head_mean = p.model.output_weight().slice(0, 0, base).mean(0);
    const bool tied = p.model.output_weight().data_ptr() == p.model.named_parameters().front().second.data_ptr();
    const auto ids = sft::add_special_tokens(p, {"<|good|>", "<|bad|>"}, 0.0, 0);
    ASSERT_EQ(ids, (std::vector<int64_t>{base, base + 1})) << arch;
    for (int64_t id : ids) {
      EXPECT_TRUE(torch::allclose(p.model.named_parameters().front().second[id], embed_mean, 1e-6, 1e-7)) << arch;
      EXPECT_TRUE(torch::allclose(p.model.output_weight()[id], head_mean, 1e-6, 1e-7)) << arch;
    }
    EXPECT_EQ(tied, arch == "llama_gqa_tied");
    // Adding them again (a resumed run) changes nothing.
    const at::Tensor before = p.model.output_weight().clone();
    EXPECT_EQ(sft::add_special_tokens(p, {"<|good|>", "<|bad|>"}, 0.5, 9), ids);
    EXPECT_TRUE(torch::equal(before, p.model.output_weight()));
  }
  // With noise: the rows differ from the mean by about noise_std per element.
  Pretrained p = load_pretrained((fs::path(test::fixtures_dir()) / "llama3_rope_untied").string(), kF32);
  const int64_t base = p.tokenizer.vocab_size();
  const at::Tensor mean = p.model.named_parameters().front().second.slice(0, 0, base).mean(0);
  const auto ids = sft::add_special_tokens(p, {"[IND]"}, 0.01, 3);
  const double std = (p.model.named_parameters().front().second[ids[0]] - mean).std().item<double>();
  EXPECT_GT(std, 0.005);
  EXPECT_LT(std, 0.02);
}

TEST(VocabularyExtension, PaddedVocabularyReusesSpareRows) {
  ANCHOR_REQUIRE_FIXTURES();
  Pretrained p = load_pretrained((fs::path(test::fixtures_dir()) / "qwen3_tiny").string(), kF32);
  const int64_t base = p.tokenizer.vocab_size();
  p.model.resize_vocab(base + 4, 0.0, 0);  // padded like Qwen's released checkpoints
  {
    torch::NoGradGuard no_grad;  // spare rows that are not the mean
    p.model.named_parameters().front().second.slice(0, base).fill_(0.5);
  }
  const int64_t rows = p.model.config().vocab_size;
  const auto ids = sft::add_special_tokens(p, {"<|good|>"}, 0.0, 0);
  EXPECT_EQ(ids[0], base);
  EXPECT_EQ(p.model.config().vocab_size, rows);
  const at::Tensor mean = p.model.named_parameters().front().second.slice(0, 0, base).mean(0);
  EXPECT_TRUE(torch::allclose(p.model.named_parameters().front().second[ids[0]], mean, 1e-6, 1e-7));
}

// Steering: the control tokens' probability goes to the asked one (here <|good|> = id 2, <|bad|> =
// id 3 of a 5-token vocabulary), the other is never drawn, and the log-prob is that of the merge.
TEST(GenerationControl, SteeringMergesControlProbabilities) {
  const at::Tensor logits = torch::log(torch::tensor({{0.1f, 0.2f, 0.05f, 0.5f, 0.15f}}));
  SamplingParams params;
  params.steer_token_id = 2;
  params.steered_token_ids = {2, 3};
  params.banned_token_ids = {4};
  // Merged and banned: p = (0.1, 0.2, 0.55, 0, 0) / 0.85. Uniform draws map through the CDF.
  const std::vector<std::pair<float, int64_t>> draws = {{0.05f, 0}, {0.2f, 1}, {0.4f, 2}, {0.99f, 2}};
  for (const auto& [u, want] : draws) {
    const auto [token, logprob] = sample_next_tokens(logits, params, torch::tensor({u}));
    EXPECT_EQ(token[0].item<int64_t>(), want) << u;
    const double p = want == 0 ? 0.1 : want == 1 ? 0.2 : 0.55;
    EXPECT_NEAR(logprob[0].item<double>(), std::log(p / 0.85), 1e-5) << u;
  }
  params.temperature = 0;  // greedy: the merged token wins over <|bad|>'s 0.5
  EXPECT_EQ(sample_next_tokens(logits, params, torch::tensor({0.5f})).first[0].item<int64_t>(), 2);
}

// Generation from a model that prefers its control tokens everywhere: without --control none is
// sampled; with --control good only <|good|> is (never <|bad|> or [IND]) and the text never shows it.
TEST(GenerationControl, ControlTokensAreBannedOrSteered) {
  ANCHOR_REQUIRE_FIXTURES();
  Pretrained p = load_pretrained((fs::path(test::fixtures_dir()) / "llama3_rope_untied").string(), kF32);
  const auto ids = sft::add_special_tokens(p, {"<|good|>", "<|bad|>", "[IND]"}, 0.0, 0);
  {
    torch::NoGradGuard no_grad;  // make the control tokens the most likely next tokens everywhere
    at::Tensor head = p.model.output_weight();
    for (int64_t id : ids) head[id].fill_(0).add_(head.slice(0, 0, ids[0]).sum(0).sign() * 3.0);
  }
  const GenerationControl good = generation_control("good", true, p.tokenizer, "--control", "--indicator");
  const auto prompt = controlled_prompt_ids(p.tokenizer.encode(controlled_prompt_text("Count", good), true),
                                                 p.tokenizer, good);
  EXPECT_EQ(prompt.back(), ids[0]);
  EXPECT_EQ(prompt[prompt.size() - 2], ids[2]);  // "... [IND]" then <|good|>
  SamplingParams params;
  params.max_new_tokens = 12;
  params.stop_token_ids = {-1};
  params.seed = 5;
  const at::Tensor control_ids = torch::tensor(ids);
  RolloutBatch unbanned = generate(p.model, p.tokenizer, {prompt, prompt}, params);
  EXPECT_TRUE(torch::isin(unbanned.response_ids, control_ids).any().item<bool>()) << "the test model must prefer them";
  for (const bool steer : {false, true}) {
    const GenerationControl control =
        steer ? good : generation_control("none", false, p.tokenizer, "--control", "--indicator");
    params.banned_token_ids.clear();
    params.steer_token_id = -1;
    params.steered_token_ids.clear();
    set_control_sampling(p.tokenizer, control, params);
    for (double temperature : {1.0, 0.0}) {
      params.temperature = temperature;
      RolloutBatch out = generate(p.model, p.tokenizer, std::vector<std::vector<int64_t>>(8, prompt), params);
      const at::Tensor sampled = out.response_ids.masked_select(out.response_mask);
      EXPECT_FALSE(torch::isin(sampled, torch::tensor({ids[1], ids[2]})).any().item<bool>());
      EXPECT_EQ(torch::isin(sampled, torch::tensor({ids[0]})).any().item<bool>(), steer) << temperature;
      for (const std::string& text : out.response_texts) EXPECT_EQ(text.find("<|"), std::string::npos) << text;
    }
  }
  Pretrained plain = load_pretrained((fs::path(test::fixtures_dir()) / "llama3_rope_untied").string(), kF32);
  EXPECT_THAT(error_of([&] { generation_control("good", false, plain.tokenizer, "--control", "--indicator"); }),
              HasSubstr("--control: the model has no <|good|> token; train it with sft.mode: conditional first"));
  EXPECT_THAT(error_of([&] { generation_control("none", true, plain.tokenizer, "--control", "rollout.indicator"); }),
              HasSubstr("rollout.indicator: the model has no [IND] token"));
}

// The conditional mode's extended model saves, reloads with the same logits, and is written for
// transformers (check_hf_loads_anchor_checkpoint.py loads it and compares these logits).
TEST(VocabularyExtension, ExtendedModelSavesForTransformers) {
  ANCHOR_REQUIRE_FIXTURES();
  for (const auto& [arch, dir] : {std::pair<std::string, std::string>{"qwen3_tiny", "anchor_saved_sft_model"},
                                  {"llama3_rope_untied", "anchor_saved_sft_model_untied"}}) {
    Pretrained p = load_pretrained((fs::path(test::fixtures_dir()) / arch).string(), kF32);
    const auto ids = sft::add_special_tokens(p, {"<|good|>", "<|bad|>", "[IND]"}, 1e-3, 1);
    const fs::path out = test::scratch_dir(dir);
    save_pretrained(p, out.string());
    Pretrained q = load_pretrained(out.string(), kF32);
    for (size_t i = 0; i < ids.size(); ++i)
      EXPECT_EQ(q.tokenizer.token_id(std::vector<std::string>{"<|good|>", "<|bad|>", "[IND]"}[i]), ids[i]) << arch;
    const at::Tensor input = torch::tensor({ids[0], int64_t{5}, int64_t{7}, ids[1], int64_t{9}, ids[2]}).view({1, 6});
    const at::Tensor mask = torch::ones({1, 6}, torch::kLong);
    torch::NoGradGuard no_grad;
    const at::Tensor a = p.model.forward(padded_batch_inputs(input, mask));
    EXPECT_TRUE(torch::equal(a, q.model.forward(padded_batch_inputs(input, mask)))) << arch;
    write_safetensors((out / "anchor_logits.safetensors").string(),
                      {{"input_ids", input}, {"attention_mask", mask}, {"logits", a}});
    std::ofstream(out / "anchor_tokens.json")
        << nlohmann::json{{"<|good|>", ids[0]}, {"<|bad|>", ids[1]}, {"[IND]", ids[2]}}.dump();
  }
}

}  // namespace
}  // namespace anchor
