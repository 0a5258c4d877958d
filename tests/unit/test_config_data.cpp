#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "data/prompt_dataset.h"
#include "tests/unit/test_util.h"
#include "trainer/config/train_config.h"

namespace anchor {
namespace {

using test::error_of;
using ::testing::HasSubstr;

const char* kMinimal = R"(
model:
  path: some/model
data:
  train: train.jsonl
reward:
  components:
    - name: countdown
    - name: format
      weight: 0.1
      marker: "Answer:"
algo:
  clip_high: 0.28
)";

TEST(TrainConfig, DefaultsOverridesAndRoundTrip) {
  TrainConfig c = parse_train_config(kMinimal, "demo.yaml", {"optim.lr=3e-4", "rollout.stop=[\"\\n\", \"END\"]"});
  EXPECT_EQ(c.model.path, "some/model");
  EXPECT_DOUBLE_EQ(c.algo.clip_high, 0.28);
  EXPECT_DOUBLE_EQ(c.algo.clip_low, 0.2);  // default
  EXPECT_DOUBLE_EQ(c.optim.lr, 3e-4);
  EXPECT_EQ(c.rollout.stop, (std::vector<std::string>{"\n", "END"}));
  ASSERT_EQ(c.reward.components.size(), 2u);
  EXPECT_EQ(c.reward.components[1].params["marker"], "Answer:");
  EXPECT_DOUBLE_EQ(c.reward.components[1].weight, 0.1);
  // The resolved YAML parses back to the same configuration.
  const std::string yaml = train_config_to_yaml(c);
  TrainConfig again = parse_train_config(yaml, "resolved.yaml");
  EXPECT_EQ(train_config_to_yaml(again), yaml);
  EXPECT_EQ(again.rollout.stop, c.rollout.stop);
  EXPECT_DOUBLE_EQ(again.optim.lr, 3e-4);
}

// The config hash (checkpoints, ablation ledgers) covers what a config sets: a key at its default,
// written or not (as a key added by a later version is), leaves it unchanged.
TEST(TrainConfig, HashCoversTheValuesThatDifferFromTheDefaults) {
  TrainConfig only_path;
  only_path.model.path = "m";
  uint64_t h = 1469598103934665603ull;  // FNV-1a 64 of the one non-default line
  for (unsigned char ch : std::string("model.path: m\n")) h = (h ^ ch) * 1099511628211ull;
  char expected[17];
  std::snprintf(expected, sizeof expected, "%016llx", static_cast<unsigned long long>(h));
  EXPECT_EQ(train_config_hash(only_path), expected);

  const std::string base = train_config_hash(parse_train_config(kMinimal, "demo.yaml"));
  EXPECT_EQ(train_config_hash(parse_train_config(kMinimal, "demo.yaml", {"algo.clip_low=0.2", "model.lora.rank=16"})), base);
  EXPECT_EQ(train_config_hash(parse_train_config(kMinimal, "demo.yaml", {"logging.run_dir=elsewhere"})), base);
  EXPECT_NE(train_config_hash(parse_train_config(kMinimal, "demo.yaml", {"algo.clip_low=0.1"})), base);
  std::string heavier_format = kMinimal;
  heavier_format.replace(heavier_format.find("weight: 0.1"), 11, "weight: 0.2");
  EXPECT_NE(train_config_hash(parse_train_config(heavier_format, "demo.yaml")), base);
}

// Found by trying the CLI as a new user would (issue: reliability, bad input).
TEST(TrainConfig, NonFiniteNumbersDuplicateKeysAndRangeErrorsNameTheLine) {
  // .inf / .nan are YAML numbers but no learning rate, clip or weight.
  EXPECT_THAT(error_of([] { parse_train_config(std::string(kMinimal) + "optim:\n  lr: .inf\n", "x.yaml"); }),
              HasSubstr("x.yaml: optim.lr must be a finite number, got '.inf' (line 15)"));
  EXPECT_THAT(error_of([] { parse_train_config(kMinimal, "x.yaml", {"algo.clip_low=.nan"}); }),
              HasSubstr("algo.clip_low must be a finite number, got '.nan'"));
  // A key or a section given twice: the second would be ignored.
  EXPECT_THAT(error_of([] {
                parse_train_config(std::string(kMinimal) + "rollout:\n  max_new_tokens: 8\n  max_new_tokens: 9\n", "x.yaml");
              }),
              HasSubstr("x.yaml: key 'rollout.max_new_tokens' appears twice (lines 15 and 16)"));
  EXPECT_THAT(error_of([] { parse_train_config(std::string(kMinimal) + "algo:\n  clip_low: 0.1\n", "x.yaml"); }),
              HasSubstr("x.yaml: key 'algo' appears twice (lines 12 and 14)"));
  // A complex key (found by tests/fuzz/fuzz_train_config): an error with the line, not a
  // yaml-cpp bad-conversion exception.
  EXPECT_THAT(error_of([] { parse_train_config(std::string(kMinimal) + "credit:\n  ? strategy: coupled\n", "x.yaml"); }),
              HasSubstr("x.yaml:15: a key must be a plain name (in 'credit'), not a list or mapping"));
  // Range errors found after reading name the file and the line (or --set, or the default).
  EXPECT_THAT(error_of([] { parse_train_config(std::string(kMinimal) + "rollout:\n  max_new_tokens: -5\n", "x.yaml"); }),
              HasSubstr("x.yaml: rollout.max_new_tokens: must be"));
  EXPECT_THAT(error_of([] { parse_train_config(std::string(kMinimal) + "rollout:\n  max_new_tokens: -5\n", "x.yaml"); }),
              HasSubstr("(line 15)"));
  EXPECT_THAT(error_of([] { parse_train_config(kMinimal, "x.yaml", {"optim.lr=-1"}); }),
              HasSubstr("x.yaml: optim.lr: must be > 0, got -1 (--set)"));
}

// With `base:` chains the merged tree has no parser marks: the line comes from the file that
// set the key.
TEST(TrainConfig, ErrorsInBaseChainsNameTheFileAndLineOfTheKey) {
  const auto dir = test::scratch_dir("config_origins");
  const std::string base = (dir / "base.yaml").string(), top = (dir / "top.yaml").string();
  std::ofstream(base) << kMinimal << "rollout:\n  max_new_tokens: -5\n";
  std::ofstream(top) << "base: base.yaml\noptim:\n  lr: 1e-4\n";
  EXPECT_THAT(error_of([&] { load_train_config(top); }),
              HasSubstr("rollout.max_new_tokens: must be >= 1 (" + base + " line 15)"));
  std::ofstream(top) << "base: base.yaml\nrollout:\n  max_new_tokens: 0\n";
  EXPECT_THAT(error_of([&] { load_train_config(top); }), HasSubstr("rollout.max_new_tokens: must be >= 1 (line 3)"));
  std::ofstream(top) << "base: base.yaml\nrollout:\n  max_new_token: 4\n";
  EXPECT_THAT(error_of([&] { load_train_config(top); }), HasSubstr("unknown key 'rollout.max_new_token' (line 3)"));
}

TEST(TrainConfig, ErrorsNameTheKeyPath) {
  EXPECT_THAT(error_of([] { parse_train_config(std::string(kMinimal) + "optim:\n  learning_rate: 1\n", "x.yaml"); }),
              HasSubstr("x.yaml: unknown key 'optim.learning_rate' (line 15)"));
  EXPECT_THAT(error_of([] { parse_train_config(kMinimal, "x.yaml", {"rollout.max_new_tokens=lots"}); }),
              HasSubstr("x.yaml: rollout.max_new_tokens must be an integer, got 'lots'"));
  EXPECT_THAT(error_of([] { parse_train_config(kMinimal, "x.yaml", {"algo.advantage=ppo"}); }),
              HasSubstr("algo.advantage: 'ppo' is not allowed (expected one of: grpo, rloo, reinforce_pp, reinforce)"));
  EXPECT_THAT(error_of([] { parse_train_config(kMinimal, "x.yaml", {"rollout.samples_per_prompt=1"}); }),
              HasSubstr("grpo needs at least 2 samples per prompt"));
  EXPECT_THAT(error_of([] { parse_train_config(kMinimal, "x.yaml", {"algo.mini_batches=3"}); }),
              HasSubstr("must divide the sequences per step"));
  EXPECT_THAT(error_of([] { parse_train_config(kMinimal, "x.yaml", {"lr=1"}); }), HasSubstr("section.key"));
  EXPECT_THAT(error_of([] { parse_train_config(kMinimal, "x.yaml", {"bogus.key=1"}); }),
              HasSubstr("unknown key 'bogus'"));
  EXPECT_THAT(error_of([] { parse_train_config("model: [1, 2", "bad.yaml"); }), HasSubstr("bad.yaml:1:"));
  EXPECT_THAT(error_of([] { parse_train_config("model:\n  path: m\n", "x.yaml"); }), HasSubstr("data.train: required"));
}

TEST(PromptDataset, ReadsJsonlAndNamesBadLines) {
  const auto dir = test::scratch_dir("dataset");
  const auto path = (dir / "d.jsonl").string();
  std::ofstream(path) << R"({"prompt": "a", "answer": "1", "numbers": [1, 2]})" << "\n\n"
                      << R"({"prompt": "b", "answer": 2})" << "\n";
  data::PromptDataset ds = data::PromptDataset::load_jsonl(path);
  ASSERT_EQ(ds.size(), 2u);
  EXPECT_EQ(ds[0].row["numbers"][1], 2);
  EXPECT_EQ(ds[1].line, 3);
  std::ofstream(path, std::ios::app) << "{\"prompt\": \"c\",\n";
  EXPECT_THAT(error_of([&] { data::PromptDataset::load_jsonl(path); }), HasSubstr(path + ":4: not valid JSON"));
  // A number no type holds (found by tests/fuzz/fuzz_jsonl_dataset): nlohmann throws
  // out_of_range, not parse_error; still an error naming the line.
  std::ofstream(path) << "{\"prompt\": \"a\"}\n3131106E17777777777777777777\n";
  EXPECT_THAT(error_of([&] { data::PromptDataset::load_jsonl(path); }), HasSubstr(path + ":2: not valid JSON"));
  std::ofstream(path) << R"({"question": "a"})" << "\n";
  EXPECT_THAT(error_of([&] { data::PromptDataset::load_jsonl(path); }), HasSubstr(":1: missing string field 'prompt'"));
}

TEST(PromptDataset, CursorIsReproducibleAndResumable) {
  data::DataCursor a(10, 7, true);
  std::vector<size_t> first = a.next(6), second = a.next(6);  // crosses into epoch 1
  EXPECT_EQ(a.epoch(), 1);
  EXPECT_EQ(a.position(), 2);
  std::vector<size_t> epoch0(first);
  epoch0.insert(epoch0.end(), second.begin(), second.begin() + 4);
  std::sort(epoch0.begin(), epoch0.end());
  for (size_t i = 0; i < 10; ++i) EXPECT_EQ(epoch0[i], i);  // each example once per epoch
  data::DataCursor b(10, 7, true);
  b.restore(1, 2);
  data::DataCursor c(10, 7, true);
  c.next(12);
  EXPECT_EQ(b.next(5), c.next(5));
  data::ChatTemplate t("chatml", "data.template");
  EXPECT_EQ(t.apply("hi"), "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_THAT(error_of([] { data::ChatTemplate("Q: ...", "data.template"); }), HasSubstr("data.template:"));
}

}  // namespace
}  // namespace anchor
