#include "trainer/algo/advantage.h"

#include <torch/torch.h>

namespace anchor {
namespace {

at::Tensor grouped(const at::Tensor& rewards, int64_t group_size) {
  AR_CHECK(rewards.dim() == 1 && group_size >= 1 && rewards.size(0) % group_size == 0,
           "advantages: rewards must be [groups * group_size], got ", rewards.sizes(), " with group_size ",
           group_size);
  return rewards.to(torch::kFloat).view({-1, group_size});
}

}  // namespace

at::Tensor grpo_advantages(const at::Tensor& rewards, const AdvantageOptions& o) {
  AR_CHECK(o.group_size >= 2, "grpo needs at least 2 samples per prompt (rollout.samples_per_prompt)");
  at::Tensor r = grouped(rewards, o.group_size);
  at::Tensor centered = r - r.mean(1, /*keepdim=*/true);
  if (o.normalize_std) centered = centered / (r.std(1, /*unbiased=*/true, /*keepdim=*/true) + o.eps);
  return centered.reshape({-1});
}

at::Tensor rloo_advantages(const at::Tensor& rewards, const AdvantageOptions& o) {
  AR_CHECK(o.group_size >= 2, "rloo needs at least 2 samples per prompt (rollout.samples_per_prompt)");
  at::Tensor r = grouped(rewards, o.group_size);
  const double g = static_cast<double>(o.group_size);
  at::Tensor others_mean = (r.sum(1, /*keepdim=*/true) - r) / (g - 1.0);
  return (r - others_mean).reshape({-1});
}

at::Tensor reinforce_pp_advantages(const at::Tensor& rewards, const AdvantageOptions& o) {
  at::Tensor r = grouped(rewards, o.group_size).reshape({-1});
  if (r.numel() < 2) return r - r.mean();
  return (r - r.mean()) / (r.std(/*unbiased=*/true) + o.eps);
}

at::Tensor reinforce_advantages(const at::Tensor& rewards, const AdvantageOptions& o) {
  return grouped(rewards, o.group_size).reshape({-1}).clone();
}

const Registry<AdvantageEstimator>& advantage_estimators() {
  static const Registry<AdvantageEstimator> registry = [] {
    Registry<AdvantageEstimator> r("advantage estimator");
    r.add("grpo", grpo_advantages);
    r.add("rloo", rloo_advantages);
    r.add("reinforce_pp", reinforce_pp_advantages);
    r.add("reinforce", reinforce_advantages);
    return r;
  }();
  return registry;
}

}  // namespace anchor
