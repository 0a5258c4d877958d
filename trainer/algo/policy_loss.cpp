#include "trainer/algo/policy_loss.h"

#include <torch/torch.h>

namespace anchor {

PolicyLossTerms ppo_clip_loss(const at::Tensor& logprobs, const at::Tensor& old_logprobs,
                              const at::Tensor& advantages, const PolicyLossOptions& o) {
  at::Tensor ratio = torch::exp(logprobs - old_logprobs);
  at::Tensor unclipped = -advantages * ratio;
  at::Tensor clipped = -advantages * torch::clamp(ratio, 1.0 - o.clip_low, 1.0 + o.clip_high);
  at::Tensor loss = torch::max(unclipped, clipped);
  at::Tensor clip_active = clipped > unclipped;
  if (o.dual_clip > 0.0) {
    at::Tensor bound = -advantages * o.dual_clip;
    at::Tensor dual = torch::min(loss, bound);
    clip_active = clip_active | ((advantages < 0) & (bound < loss));
    loss = torch::where(advantages < 0, dual, loss);
  }
  return {loss, clip_active, ratio.detach()};
}

const Registry<PolicyLoss>& policy_losses() {
  static const Registry<PolicyLoss> registry = [] {
    Registry<PolicyLoss> r("policy loss");
    r.add("ppo_clip", ppo_clip_loss);
    return r;
  }();
  return registry;
}

}  // namespace anchor
