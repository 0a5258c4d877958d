// LR schedule values, checkpoint directory rules (atomic, latest, keep-last, incomplete),
// AdamW state round trip.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "tests/unit/test_util.h"
#include "trainer/checkpoint/checkpoint.h"
#include "trainer/checkpoint/training_checkpoint.h"
#include "trainer/optim/adamw_state.h"
#include "trainer/optim/lr_schedule.h"

namespace anchor {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

TEST(LrSchedule, WarmupConstantAndCosineHandComputed) {
  OptimSection o;
  o.lr = 1.0;
  o.warmup_steps = 4;
  EXPECT_DOUBLE_EQ(learning_rate_at(0, 10, o), 0.25);
  EXPECT_DOUBLE_EQ(learning_rate_at(3, 10, o), 1.0);
  EXPECT_DOUBLE_EQ(learning_rate_at(9, 10, o), 1.0);
  o.schedule = "cosine";
  o.min_lr_ratio = 0.1;
  // After warmup: progress (step - 4) / 6; halfway (step 7) -> 0.1 + 0.9 * 0.5.
  EXPECT_DOUBLE_EQ(learning_rate_at(4, 10, o), 1.0);
  EXPECT_NEAR(learning_rate_at(7, 10, o), 0.55, 1e-12);
  EXPECT_NEAR(learning_rate_at(10, 10, o), 0.1, 1e-12);
}

Pretrained tiny_pretrained() {
  nlohmann::json j = {{"vocab_size", 120}, {"hidden_size", 16}, {"intermediate_size", 24}, {"num_hidden_layers", 1},
                      {"num_attention_heads", 2}, {"eos_token_id", 2}};
  return Pretrained{LlamaModel(parse_llama_config(j, "tiny"), torch::TensorOptions().dtype(torch::kFloat), 1),
                    Tokenizer::from_sentencepiece((fs::path(test::fixtures_dir()) / "tokenizer.model").string())};
}

TEST(Checkpoint, LatestKeepLastAndIncompleteDirectories) {
  ANCHOR_REQUIRE_FIXTURES();
  const fs::path run = test::scratch_dir("ckpt_rules");
  Pretrained p = tiny_pretrained();
  TrainerState s;
  for (int64_t step : {2, 4, 6}) {
    s.step = step;
    s.data_position = step * 10;
    save_checkpoint(run.string(), s, p, {{"x", torch::ones({2})}}, /*keep_last=*/2);
  }
  EXPECT_FALSE(fs::exists(run / "checkpoints" / "step-00000002"));  // pruned
  EXPECT_TRUE(fs::exists(run / "checkpoints" / "step-00000004" / "DONE"));
  const std::string latest = resolve_checkpoint(run.string(), "latest");
  EXPECT_THAT(latest, HasSubstr("step-00000006"));
  const TrainerState back = load_trainer_state(latest);
  EXPECT_EQ(back.step, 6);
  EXPECT_EQ(back.data_position, 60);
  EXPECT_TRUE(fs::exists(fs::path(latest) / "model.safetensors"));
  fs::remove(run / "checkpoints" / "step-00000004" / "DONE");
  EXPECT_THAT(test::error_of([&] { resolve_checkpoint(run.string(), (run / "checkpoints" / "step-00000004").string()); }),
              HasSubstr("incomplete (no DONE marker)"));
  EXPECT_THAT(test::error_of([&] { resolve_checkpoint(test::scratch_dir("ckpt_none").string(), "latest"); }),
              HasSubstr("no checkpoint in"));
  std::ofstream(fs::path(latest) / "trainer_state.json") << R"({"schema_version": 99})";
  EXPECT_THAT(test::error_of([&] { load_trainer_state(latest); }), HasSubstr("schema_version 99"));
}

TEST(Checkpoint, AdamWStateRoundTripsExactly) {
  ANCHOR_REQUIRE_FIXTURES();
  Pretrained p = tiny_pretrained();
  p.model.set_requires_grad(true);
  torch::optim::AdamW a(p.model.parameters(), torch::optim::AdamWOptions(1e-2));
  for (int i = 0; i < 3; ++i) {
    a.zero_grad();
    at::Tensor ids = torch::tensor({{3, 4, 5, 6}}, torch::kLong);
    p.model.forward(padded_batch_inputs(ids, torch::ones_like(ids, torch::kBool))).pow(2).mean().backward();
    a.step();
  }
  const fs::path run = test::scratch_dir("ckpt_adamw");
  TrainerState s;
  s.step = 3;
  const std::string dir = save_training_checkpoint(run.string(), s, p, a, 1);
  Pretrained q{load_model(dir, torch::TensorOptions().dtype(torch::kFloat)), Tokenizer::load(dir)};
  q.model.set_requires_grad(true);
  torch::optim::AdamW b(q.model.parameters(), torch::optim::AdamWOptions(1e-2));
  restore_training_checkpoint(dir, q, b);
  const auto sa = adamw_state_tensors(a, p.model.named_parameters());
  const auto sb = adamw_state_tensors(b, q.model.named_parameters());
  ASSERT_EQ(sa.size(), sb.size());
  ASSERT_FALSE(sa.empty());
  for (size_t i = 0; i < sa.size(); ++i) {
    EXPECT_EQ(sa[i].first, sb[i].first);
    EXPECT_TRUE(torch::equal(sa[i].second, sb[i].second)) << sa[i].first;
  }
}

}  // namespace
}  // namespace anchor
