// KL estimators between the policy and a frozen reference, per token (Schulman 2020,
// "Approximating KL divergence"), with log r = ref_logprobs - logprobs:
//   k1 = -log r,   k2 = (log r)^2 / 2,   k3 = r - 1 - log r   (unbiased, always >= 0).
// log r is clamped to [-20, 20] so that k3's exponential cannot overflow.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>

#include "trainer/common/registry.h"

namespace anchor {

using KlEstimator = std::function<at::Tensor(const at::Tensor& logprobs, const at::Tensor& ref_logprobs)>;

at::Tensor kl_k1(const at::Tensor& logprobs, const at::Tensor& ref_logprobs);
at::Tensor kl_k2(const at::Tensor& logprobs, const at::Tensor& ref_logprobs);
at::Tensor kl_k3(const at::Tensor& logprobs, const at::Tensor& ref_logprobs);

const Registry<KlEstimator>& kl_estimators();

}  // namespace anchor
