// Hand-computed cases for every advantage estimator, the PPO loss, aggregation and KL.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "tests/unit/test_util.h"
#include "trainer/algo/advantage.h"
#include "trainer/algo/kl_penalty.h"
#include "trainer/algo/loss_aggregation.h"
#include "trainer/algo/policy_loss.h"

namespace anchor {
namespace {

using ::testing::HasSubstr;

void expect_values(const at::Tensor& t, std::vector<double> expected, double tol = 1e-5) {
  ASSERT_EQ(t.numel(), static_cast<int64_t>(expected.size()));
  at::Tensor flat = t.reshape({-1}).to(torch::kDouble);
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(flat[i].item<double>(), expected[i], tol) << "index " << i;
}

TEST(Advantage, GrpoWithAndWithoutStd) {
  // Group (1, 0, 0, 1): mean 0.5, unbiased std sqrt(1/3); group (2, 2, 2, 2): all zero.
  at::Tensor r = torch::tensor({1.0f, 0.0f, 0.0f, 1.0f, 2.0f, 2.0f, 2.0f, 2.0f});
  AdvantageOptions o{4, true, 1e-6};  // eps keeps the constant group at 0 instead of 0/0
  const double s = std::sqrt(1.0 / 3.0);
  expect_values(grpo_advantages(r, o), {0.5 / s, -0.5 / s, -0.5 / s, 0.5 / s, 0, 0, 0, 0});
  o.normalize_std = false;
  expect_values(grpo_advantages(r, o), {0.5, -0.5, -0.5, 0.5, 0, 0, 0, 0});
}

TEST(Advantage, RlooLeavesOneOut) {
  // (3, 1, 2): others' means 1.5, 2.5, 2 -> 1.5, -1.5, 0.
  expect_values(rloo_advantages(torch::tensor({3.0f, 1.0f, 2.0f}), AdvantageOptions{3}), {1.5, -1.5, 0.0});
}

TEST(Advantage, ReinforcePlusPlusNormalisesOverBatch) {
  // (1, 2, 3, 6): mean 3, unbiased std sqrt(14/3).
  const double s = std::sqrt(14.0 / 3.0);
  expect_values(reinforce_pp_advantages(torch::tensor({1.0f, 2.0f, 3.0f, 6.0f}), AdvantageOptions{2, true, 0.0}),
                {-2 / s, -1 / s, 0.0, 3 / s});
  expect_values(reinforce_advantages(torch::tensor({1.0f, -2.0f}), AdvantageOptions{1}), {1.0, -2.0});
}

TEST(Advantage, RegistryErrors) {
  EXPECT_THAT(test::error_of([] { advantage_estimators().get("ppo_gae"); }),
              HasSubstr("unknown advantage estimator 'ppo_gae' (registered: grpo, reinforce, reinforce_pp, rloo)"));
  EXPECT_THAT(test::error_of([] { grpo_advantages(torch::ones({3}), AdvantageOptions{1}); }),
              HasSubstr("at least 2 samples"));
  EXPECT_THAT(test::error_of([] { grpo_advantages(torch::ones({5}), AdvantageOptions{2}); }),
              HasSubstr("groups * group_size"));
  Registry<int> r("thing");
  r.add("a", 1);
  EXPECT_THAT(test::error_of([&] { r.add("a", 2); }), HasSubstr("thing 'a' is registered twice"));
}

TEST(PolicyLoss, PpoClipHandComputed) {
  // ratios e^{lp - old}: choose lp so that ratios are 1.5, 0.5, 1.1, 0.7 with A = +1, -1, -2, +1.
  at::Tensor old = torch::zeros({1, 4});
  at::Tensor lp = torch::tensor({std::log(1.5f), std::log(0.5f), std::log(1.1f), std::log(0.7f)}).view({1, 4});
  at::Tensor adv = torch::tensor({1.0f, -1.0f, -2.0f, 1.0f}).view({1, 4});
  PolicyLossOptions o{0.2, 0.28, 0.0};
  PolicyLossTerms t = ppo_clip_loss(lp, old, adv, o);
  // 1: max(-1.5, -1.28) = -1.28 (clipped);  2: max(0.5, 0.8) = 0.8 (clipped);
  // 3: max(2.2, 2.2) = 2.2 (not clipped);   4: max(-0.7, -0.8) = -0.7 (not clipped).
  expect_values(t.loss, {-1.28, 0.8, 2.2, -0.7});
  EXPECT_EQ(t.clipped.to(torch::kLong).sum().item<int64_t>(), 2);
  expect_values(t.ratio, {1.5, 0.5, 1.1, 0.7});
  // Dual clip c = 1.5 bounds negative-advantage losses by -c*A: token 3 -> min(2.2, 3.0) = 2.2;
  // with ratio 4 and A = -1, loss would be 4 -> bounded to 1.5.
  at::Tensor lp2 = torch::tensor({std::log(4.0f)}).view({1, 1});
  PolicyLossTerms d = ppo_clip_loss(lp2, torch::zeros({1, 1}), -torch::ones({1, 1}), PolicyLossOptions{0.2, 0.2, 1.5});
  expect_values(d.loss, {1.5});
  EXPECT_TRUE(d.clipped.all().item<bool>());
}

TEST(PolicyLoss, GradientVanishesOnlyWhereClipped) {
  at::Tensor lp = torch::tensor({std::log(1.5f), std::log(1.1f)}).view({1, 2}).set_requires_grad(true);
  PolicyLossTerms t = ppo_clip_loss(lp, torch::zeros({1, 2}), torch::ones({1, 2}), PolicyLossOptions{});
  t.loss.sum().backward();
  expect_values(lp.grad(), {0.0, -1.1});  // d(-A r)/d lp = -A r where unclipped
}

TEST(LossAggregation, ModesHandComputed) {
  at::Tensor v = torch::tensor({1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f}).view({2, 3});
  at::Tensor m = torch::tensor({1, 1, 1, 1, 0, 0}, torch::kBool).view({2, 3});
  // token_mean: (1+2+3+4) / 4 tokens.
  EXPECT_DOUBLE_EQ(aggregation_denominator(LossAggregation::token_mean, m), 4.0);
  expect_values(aggregate_loss(v, m, LossAggregation::token_mean, 4.0, 0), {2.5});
  // seq_mean_token_mean: (mean(1,2,3) + mean(4)) / 2 sequences = (2 + 4) / 2.
  expect_values(aggregate_loss(v, m, LossAggregation::seq_mean_token_mean, 2.0, 0), {3.0});
  // seq_mean_token_sum_norm: (6 + 4) / (2 * 5).
  expect_values(aggregate_loss(v, m, LossAggregation::seq_mean_token_sum_norm, 2.0, 5), {1.0});
}

TEST(LossAggregation, MicroBatchesWithGlobalDenominatorSumToFullBatch) {
  torch::manual_seed(0);
  at::Tensor v = torch::randn({6, 5});
  at::Tensor m = torch::rand({6, 5}) > 0.3;
  for (auto mode : {LossAggregation::token_mean, LossAggregation::seq_mean_token_mean,
                    LossAggregation::seq_mean_token_sum_norm}) {
    const double denom = aggregation_denominator(mode, m);
    at::Tensor full = aggregate_loss(v, m, mode, denom, 5);
    at::Tensor parts = aggregate_loss(v.slice(0, 0, 2), m.slice(0, 0, 2), mode, denom, 5) +
                       aggregate_loss(v.slice(0, 2, 6), m.slice(0, 2, 6), mode, denom, 5);
    EXPECT_NEAR(full.item<double>(), parts.item<double>(), 1e-6) << enum_name(mode);
  }
}

TEST(KlPenalty, EstimatorsHandComputed) {
  // logprobs = log 0.5, ref = log 0.25: log r = log(1/2) = -ln 2, r = 1/2.
  at::Tensor lp = torch::full({1, 1}, std::log(0.5f));
  at::Tensor ref = torch::full({1, 1}, std::log(0.25f));
  const double l2 = std::log(2.0);
  expect_values(kl_k1(lp, ref), {l2});
  expect_values(kl_k2(lp, ref), {0.5 * l2 * l2});
  expect_values(kl_k3(lp, ref), {0.5 - 1.0 + l2});
  expect_values(kl_k3(lp, lp), {0.0});
  EXPECT_TRUE(std::isfinite(kl_k3(torch::full({1}, -1000.0f), torch::zeros({1})).item<float>()));
  EXPECT_EQ(kl_estimators().names(), (std::vector<std::string>{"k1", "k2", "k3"}));
}

}  // namespace
}  // namespace anchor
