// The RL step's stages one by one: group sharding across ranks, dynamic sampling, the
// mini-batch plan of a data-parallel rank, the metric sums, the advantage stage (by hand and
// independent of how the batch is split), the old-policy pass and the rollout stage on the
// demo model.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "credit/gtpo_advantages.h"
#include "tests/unit/test_util.h"
#include "trainer/algo/loss_aggregation.h"
#include "trainer/config/train_config.h"
#include "trainer/distributed/communicator.h"
#include "trainer/rl/advantage_stage.h"
#include "trainer/rl/metric_sums.h"
#include "trainer/rl/mini_batch_plan.h"
#include "trainer/rl/old_policy_stage.h"
#include "trainer/rl/prompt_limits.h"
#include "trainer/rl/rollout_stage.h"
#include "trainer/rl/step_shard.h"

namespace anchor {
namespace {

std::vector<int64_t> values(const at::Tensor& t) {
  const at::Tensor c = t.to(torch::kLong).contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

TEST(RlStages, ShardRangeSplitsEvenlyLowerRanksTakeTheRemainder) {
  EXPECT_EQ(dist::shard_range(10, 0, 3), (std::pair<int64_t, int64_t>{0, 4}));
  EXPECT_EQ(dist::shard_range(10, 1, 3), (std::pair<int64_t, int64_t>{4, 7}));
  EXPECT_EQ(dist::shard_range(10, 2, 3), (std::pair<int64_t, int64_t>{7, 10}));
  EXPECT_EQ(dist::shard_range(1, 1, 2), (std::pair<int64_t, int64_t>{1, 1}));  // nothing left for rank 1
  EXPECT_EQ(dist::shard_range(7, 0, 1), (std::pair<int64_t, int64_t>{0, 7}));
}

TEST(RlStages, StepShardKeepsWholeGroupsOrReplicatesSmallBatches) {
  // 5 groups of 2 over 2 ranks: rank 0 groups 0-2 (rows 0-5), rank 1 groups 3-4 (rows 6-9).
  StepShard a = shard_step(5, 2, 0, 2, nullptr), b = shard_step(5, 2, 1, 2, nullptr);
  EXPECT_EQ(values(a.rows), (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(values(b.rows), (std::vector<int64_t>{6, 7, 8, 9}));
  EXPECT_FALSE(a.replicated);
  // 1 group kept, 2 ranks: both train on it, nothing is summed over ranks.
  StepShard c = shard_step(1, 4, 1, 2, &dist::Communicator::world());
  EXPECT_EQ(values(c.rows), (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_TRUE(c.replicated);
  EXPECT_EQ(c.sum, nullptr);
  // One process: everything, no sums.
  StepShard d = shard_step(3, 2, 0, 1, &dist::Communicator::world());
  EXPECT_EQ(d.rows.size(0), 6);
  EXPECT_FALSE(d.replicated);
  EXPECT_EQ(d.sum, nullptr);
}

TEST(RlStages, DynamicSamplingKeepsGroupsWhoseRewardsDiffer) {
  const at::Tensor rewards = torch::tensor({1.0, 1.0, 0.0, 1.0, 2.0, 2.0, 2.0, 2.0, 0.0, 0.0, 0.0, 0.5}, torch::kDouble);
  EXPECT_EQ(values(informative_groups(rewards, 4)), (std::vector<int64_t>{1, 0, 1}));
  EXPECT_EQ(values(informative_groups(rewards, 1)), std::vector<int64_t>(12, 0));  // one sample: never informative
  EXPECT_NE(test::error_of([&] { informative_groups(rewards, 5); }), "");
}

// The rows each rank trains on per optimizer step are the one-process mini-batch split by
// owner, with the global denominator.
TEST(RlStages, MiniBatchPlanOfRanksPartitionsTheOneProcessPlan) {
  const int64_t N = 8, R = 9;
  const at::Tensor lengths = torch::tensor({1, 2, 3, 4, 5, 6, 7, 8}, torch::kLong);
  const at::Tensor mask = torch::arange(R, torch::kLong).unsqueeze(0).lt(lengths.unsqueeze(1));
  for (auto [epochs, minis] : {std::pair<int64_t, int64_t>{1, 1}, {2, 2}, {1, 4}}) {
    const auto whole = mini_batch_plan(mask, torch::arange(N, torch::kLong), epochs, minis,
                                       LossAggregation::token_mean, 7, 3);
    const auto first = mini_batch_plan(mask, torch::arange(0, 4, torch::kLong), epochs, minis,
                                       LossAggregation::token_mean, 7, 3);
    const auto second = mini_batch_plan(mask, torch::arange(4, 8, torch::kLong), epochs, minis,
                                        LossAggregation::token_mean, 7, 3);
    ASSERT_EQ(whole.size(), static_cast<size_t>(epochs * minis));
    ASSERT_EQ(first.size(), whole.size());
    for (size_t m = 0; m < whole.size(); ++m) {
      std::vector<int64_t> expected = values(whole[m].local_rows), got = values(first[m].local_rows);
      EXPECT_TRUE(std::is_sorted(expected.begin(), expected.end())) << "rows of a mini-batch are ascending";
      for (int64_t r : values(second[m].local_rows)) got.push_back(r + 4);
      std::sort(expected.begin(), expected.end());
      std::sort(got.begin(), got.end());
      EXPECT_EQ(got, expected) << "epochs " << epochs << " mini-batches " << minis << " step " << m;
      double tokens = 0;
      for (int64_t r : expected) tokens += static_cast<double>(r + 1);
      EXPECT_EQ(whole[m].denominator, tokens);
      EXPECT_EQ(first[m].denominator, tokens);
      EXPECT_EQ(second[m].denominator, tokens);
    }
  }
  // One epoch, one mini-batch: every row in order, denominator = all 36 tokens.
  const auto one = mini_batch_plan(mask, torch::arange(N, torch::kLong), 1, 1, LossAggregation::token_mean, 7, 3);
  EXPECT_EQ(values(one[0].local_rows), (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(one[0].denominator, 36.0);
  // Sequence aggregation counts sequences.
  const auto seq = mini_batch_plan(mask, torch::arange(N, torch::kLong), 1, 2, LossAggregation::seq_mean_token_mean, 7, 3);
  EXPECT_EQ(seq[0].denominator, 4.0);
}

TEST(RlStages, MetricSumsAccumulateByName) {
  MetricSums s;
  s.add("a", 1.5);
  s.add("b", 2.0);
  s.add("a", 0.5);
  EXPECT_EQ(s["a"], 2.0);
  EXPECT_EQ(s["b"], 2.0);
  EXPECT_EQ(s["never"], 0.0);
  EXPECT_TRUE(s.has("b"));
  EXPECT_FALSE(s.has("never"));
  s.reduce(dist::Communicator::world());  // one process: unchanged
  EXPECT_EQ(s["a"], 2.0);
}

ScoredRollouts hand_rollouts() {
  // Two groups of 2: rewards (1, 0) and (0.5, 0.5); response lengths 3, 1, 2, 2.
  ScoredRollouts r;
  const at::Tensor lengths = torch::tensor({3, 1, 2, 2}, torch::kLong);
  r.batch.prompt_ids = torch::ones({4, 2}, torch::kLong);
  r.batch.prompt_mask = torch::ones({4, 2}, torch::kBool);
  r.batch.response_mask = torch::arange(3, torch::kLong).unsqueeze(0).lt(lengths.unsqueeze(1));
  r.batch.response_ids = r.batch.response_mask.to(torch::kLong) * 5;
  r.sampling_logprobs = torch::zeros({4, 3});
  r.rewards = torch::tensor({1.0f, 0.0f, 0.5f, 0.5f});
  r.correct = r.rewards.gt(0.7);
  r.components = r.rewards.to(torch::kDouble).unsqueeze(1);
  r.groups_kept = r.groups_seen = 2;
  return r;
}

TEST(RlStages, AdvantagesByHandAndIndependentOfTheSplit) {
  TrainConfig cfg;
  cfg.rollout.samples_per_prompt = 2;
  cfg.algo.advantage = "grpo";
  cfg.algo.normalize_std = true;
  cfg.credit.strategy = credit::CreditStrategy::none;
  const ScoredRollouts r = hand_rollouts();
  const StepAdvantages a = compute_advantages(r, OldPolicyOutputs{}, cfg, torch::arange(4, torch::kLong), 1);
  // Group 1: mean 0.5, sample std 0.7071 -> +-0.7071; group 2: equal rewards -> 0.
  ASSERT_EQ(a.sequence.size(0), 4);
  EXPECT_NEAR(a.sequence[0].item<double>(), 0.5 / std::sqrt(0.5), 1e-5);
  EXPECT_NEAR(a.sequence[1].item<double>(), -0.5 / std::sqrt(0.5), 1e-5);
  EXPECT_NEAR(a.sequence[2].item<double>(), 0.0, 1e-6);
  // Broadcast to the valid tokens only (strategy none: γ = 1).
  EXPECT_NEAR(a.tokens[0][2].item<double>(), 0.5 / std::sqrt(0.5), 1e-5);
  EXPECT_EQ(a.tokens[1][1].item<double>(), 0.0);
  EXPECT_FALSE(a.kl_tokens.defined());
  // The random baseline draws per global row: rank 1's half (global rows 2, 3) alone gets the
  // same γ as those rows inside the whole batch.
  cfg.credit.strategy = credit::CreditStrategy::random;
  cfg.credit.token_fraction = 0.5;
  const StepAdvantages whole = compute_advantages(r, OldPolicyOutputs{}, cfg, torch::arange(4, torch::kLong), 1);
  const ScoredRollouts half = r.select(torch::tensor({2, 3}, torch::kLong));
  const StepAdvantages part = compute_advantages(half, OldPolicyOutputs{}, cfg, torch::tensor({2, 3}, torch::kLong), 1);
  EXPECT_TRUE(torch::equal(part.gamma, whole.gamma.slice(0, 2, 4).slice(1, 0, part.gamma.size(1))));
}

// The entropy comparators through the advantage stage: forking_tokens keeps the gradient of the
// batch's top-entropy tokens (the threshold over every rank's rows), gtpo replaces sequence x γ by
// its token advantages.
TEST(RlStages, EntropyComparatorsInTheAdvantageStage) {
  TrainConfig cfg;
  cfg.rollout.samples_per_prompt = 2;
  cfg.credit.strategy = credit::CreditStrategy::forking_tokens;
  cfg.credit.forking_fraction = 0.25;
  const ScoredRollouts r = hand_rollouts();
  OldPolicyOutputs old;
  old.entropy = torch::arange(12, torch::kFloat).view({4, 3}).remainder(5.0f);
  const StepAdvantages whole = compute_advantages(r, old, cfg, torch::arange(4, torch::kLong), 1);
  const at::Tensor valid = r.batch.response_mask;
  const at::Tensor kept = whole.gamma.gt(0).logical_and(valid);
  EXPECT_EQ(kept.sum().item<int64_t>(), valid.sum().item<int64_t>() / 4 + (valid.sum().item<int64_t>() % 4 != 0));
  EXPECT_TRUE(torch::equal(whole.tokens, whole.sequence.unsqueeze(1) * valid.to(torch::kFloat) * whole.gamma));
  // Rank 1's half with the other half's entropies gathered gets the rows' γ of the whole batch.
  const ScoredRollouts half = r.select(torch::tensor({2, 3}, torch::kLong));
  OldPolicyOutputs half_old;
  half_old.entropy = old.entropy.slice(0, 2, 4).slice(1, 0, half.batch.response_ids.size(1));
  const at::Tensor other = old.entropy.slice(0, 0, 2).masked_select(valid.slice(0, 0, 2));
  const credit::BatchGather gather = [&](const at::Tensor& mine) { return torch::cat({other, mine}); };
  const StepAdvantages part = compute_advantages(half, half_old, cfg, torch::tensor({2, 3}, torch::kLong), 1, &gather);
  EXPECT_TRUE(torch::equal(part.gamma, whole.gamma.slice(0, 2, 4).slice(1, 0, part.gamma.size(1))));

  cfg.credit.strategy = credit::CreditStrategy::gtpo;
  const StepAdvantages g = compute_advantages(r, old, cfg, torch::arange(4, torch::kLong), 1);
  const at::Tensor expected = credit::gtpo_token_advantages(
      r.correct, old.entropy, valid.sum(1), credit::GtpoOptions{2, cfg.credit.gtpo_alpha_reward, cfg.credit.gtpo_alpha_entropy});
  EXPECT_TRUE(torch::equal(g.tokens, expected));
  EXPECT_GT(g.tokens[0].masked_select(valid[0]).min().item<double>(), 0.0);  // the correct response of group 1
  EXPECT_LT(g.tokens[1].masked_select(valid[1]).max().item<double>(), 0.0);
  EXPECT_EQ(g.tokens.slice(0, 2, 4).abs().sum().item<double>(), 0.0);  // group 2: both wrong
  EXPECT_NE(test::error_of([&] { compute_advantages(r, OldPolicyOutputs{}, cfg, torch::arange(4, torch::kLong), 1); })
                .find("entropies"),
            std::string::npos);
}

TEST(RlStages, ScoredRolloutsSelectTrimsPaddingColumns) {
  const ScoredRollouts r = hand_rollouts();
  const ScoredRollouts s = r.select(torch::tensor({1, 2}, torch::kLong));
  EXPECT_EQ(s.batch.response_ids.size(1), 2);  // longest selected response
  EXPECT_EQ(s.sampling_logprobs.size(1), 2);
  EXPECT_EQ(values(s.rewards.mul(2)), (std::vector<int64_t>{0, 1}));
}

TrainConfig demo_config(const std::vector<std::string>& overrides) {
  const std::string root = ANCHOR_SOURCE_DIR_FOR_TESTS;
  std::vector<std::string> all = {"model.path=" + root + "data/demo-model", "data.train=" + root + "data/countdown/train.jsonl",
                                  "data.eval="};
  all.insert(all.end(), overrides.begin(), overrides.end());
  return load_train_config(root + "configs/demo.yaml", all);
}

// Rollout stage on the demo model: whole groups, only informative ones under dynamic
// sampling, rounds until the step is full or the round limit, tensors consistent.
TEST(RlStages, RolloutStageKeepsWholeInformativeGroups) {
  for (bool dynamic : {true, false}) {
    const TrainConfig cfg =
        demo_config({"rollout.prompts_per_step=6", "rollout.samples_per_prompt=4", "algo.max_sampling_rounds=3",
                     std::string("algo.dynamic_sampling=") + (dynamic ? "true" : "false")});
    const Pretrained policy = load_pretrained(cfg.model.path, torch::TensorOptions().dtype(torch::kFloat));
    const data::PromptDataset prompts = data::PromptDataset::load_jsonl(cfg.data.train, cfg.data.prompt_key);
    const data::ChatTemplate tmpl = chat_template_for(policy, cfg.data.template_, "data.template");
    const rewards::CompositeReward reward(cfg.reward.components);
    data::DataCursor cursor(prompts.size(), cfg.train.seed, cfg.data.shuffle);
    const RolloutContext ctx{policy, prompts, tmpl, reward, cfg, dist::Communicator::world()};
    const ScoredRollouts r = collect_scored_rollouts(ctx, cursor, 1);
    const int64_t N = r.size();
    EXPECT_EQ(N, r.groups_kept * 4);
    EXPECT_EQ(r.batch.response_ids.size(0), N);
    EXPECT_EQ(r.sampling_logprobs.sizes(), r.batch.response_ids.sizes());
    EXPECT_EQ(cursor.position() + cursor.epoch() * static_cast<int64_t>(prompts.size()), r.groups_seen);
    if (dynamic) {
      EXPECT_LE(r.groups_kept, 6);
      EXPECT_GE(r.groups_seen, 6);
      EXPECT_LE(r.groups_seen, 18);
      if (N > 0) EXPECT_TRUE(informative_groups(r.rewards.to(torch::kDouble), 4).all().item<bool>());
    } else {
      EXPECT_EQ(r.groups_kept, 6);
      EXPECT_EQ(r.groups_seen, 6);
    }
    // Prompts left-padded, responses right-padded, sampling log-probs 0 on padding.
    EXPECT_TRUE(r.batch.prompt_mask.select(1, -1).all().item<bool>());
    EXPECT_TRUE(r.batch.response_mask.select(1, 0).all().item<bool>());
    EXPECT_EQ(r.sampling_logprobs.masked_select(r.batch.response_mask.logical_not()).abs().sum().item<double>(), 0.0);
    // Log-probs of sampled tokens are log-probabilities.
    EXPECT_LE(r.sampling_logprobs.max().item<double>(), 0.0);
  }
}

// Old-policy stage: the no-grad pass is skipped when fully on-policy without credit, run for
// entropy credit (entropies) and for attention credit (a map over the batch's tokens).
TEST(RlStages, OldPolicyStageRunsThePassOnlyWhenNeeded) {
  TrainConfig cfg = demo_config({"rollout.prompts_per_step=2", "rollout.samples_per_prompt=2",
                                 "algo.dynamic_sampling=false", "credit.strategy=none"});
  const Pretrained policy = load_pretrained(cfg.model.path, torch::TensorOptions().dtype(torch::kFloat));
  const ScoredRollouts r = hand_rollouts();
  CreditState state;
  EXPECT_FALSE(score_with_old_policy(policy, nullptr, r.batch, cfg, state, nullptr).logprobs.defined());
  cfg.credit.strategy = credit::CreditStrategy::entropy;
  const OldPolicyOutputs e = score_with_old_policy(policy, nullptr, r.batch, cfg, state, nullptr);
  ASSERT_TRUE(e.logprobs.defined());
  ASSERT_TRUE(e.entropy.defined());
  EXPECT_EQ(e.logprobs.sizes(), r.batch.response_ids.sizes());
  EXPECT_EQ(e.logprobs.masked_select(r.batch.response_mask.logical_not()).abs().sum().item<double>(), 0.0);
  EXPECT_GT(e.entropy.masked_select(r.batch.response_mask).min().item<double>(), 0.0);
  for (const auto strategy : {credit::CreditStrategy::forking_tokens, credit::CreditStrategy::gtpo}) {
    cfg.credit.strategy = strategy;
    EXPECT_TRUE(score_with_old_policy(policy, nullptr, r.batch, cfg, state, nullptr).entropy.defined());
  }
  cfg.credit.strategy = credit::CreditStrategy::coupled;
  cfg.credit.layers = {credit::LayerMode::automatic, {}};
  cfg.credit.auto_layer_count = 2;
  const OldPolicyOutputs c = score_with_old_policy(policy, nullptr, r.batch, cfg, state, nullptr);
  ASSERT_TRUE(c.credit_map.has_value());
  EXPECT_EQ(c.chosen_layers.size(), 2u);
  EXPECT_EQ(state.auto_layers, c.chosen_layers);  // kept for the run
  EXPECT_EQ(c.credit_map->preplan.sizes(), r.batch.response_ids.sizes());
  // Chosen once: the next step observes the same layers without choosing again.
  EXPECT_TRUE(score_with_old_policy(policy, nullptr, r.batch, cfg, state, nullptr).chosen_layers.empty());
}

TEST(RlStages, PromptLimitIsThePositionsLeftOrTheConfiguredOne) {
  LlamaConfig c;
  c.max_position_embeddings = 1024;
  EXPECT_EQ(prompt_limit(c, 48, 0).max_tokens, 976);
  EXPECT_EQ(prompt_limit(c, 48, 500).max_tokens, 500);
  EXPECT_EQ(prompt_limit(c, 48, 500).why, "data.max_prompt_tokens");
  EXPECT_EQ(prompt_limit(c, 48, 2000).max_tokens, 976);  // never beyond the model
  EXPECT_NE(test::error_of([&] { prompt_limit(c, 1024, 0); }), "");
}

}  // namespace
}  // namespace anchor
