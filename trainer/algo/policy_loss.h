// Policy losses (docs/design.md §4): per-token loss values, aggregated separately by aggregate_loss.
// Token-level: every function returns [B, T] values; masking and normalisation happen in
// aggregate_loss so that gradient accumulation equals the full batch.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>

#include "trainer/common/registry.h"

namespace anchor {

struct PolicyLossOptions {
  double clip_low = 0.2;   // ratio lower bound 1 - clip_low
  double clip_high = 0.2;  // ratio upper bound 1 + clip_high (DAPO clip-higher: > clip_low)
  double dual_clip = 0.0;  // 0 = off; c > 1 bounds the loss of negative advantages by -c*A (Ye et al. 2020)
};

struct PolicyLossTerms {
  at::Tensor loss;     // [B, T] per-token loss (to minimise)
  at::Tensor clipped;  // [B, T] bool: the clipped branch was active (no gradient through the ratio)
  at::Tensor ratio;    // [B, T] importance ratio exp(logprobs - old_logprobs), detached
};

// logprobs [B, T] (with grad), old_logprobs [B, T], advantages [B, T] (already credit-shaped).
using PolicyLoss = std::function<PolicyLossTerms(const at::Tensor& logprobs, const at::Tensor& old_logprobs,
                                                 const at::Tensor& advantages, const PolicyLossOptions&)>;

// PPO clipped surrogate (Schulman et al. 2017) with separate low/high clip and optional dual clip:
//   l = max(-A r, -A clip(r, 1-clip_low, 1+clip_high));  if A < 0 and dual_clip: l = min(l, -c A).
PolicyLossTerms ppo_clip_loss(const at::Tensor& logprobs, const at::Tensor& old_logprobs,
                              const at::Tensor& advantages, const PolicyLossOptions& options);

const Registry<PolicyLoss>& policy_losses();

}  // namespace anchor
