#include "trainer/algo/kl_penalty.h"

#include <torch/torch.h>

namespace anchor {
namespace {
at::Tensor log_ratio(const at::Tensor& logprobs, const at::Tensor& ref_logprobs) {
  return torch::clamp(ref_logprobs - logprobs, -20.0, 20.0);
}
}  // namespace

at::Tensor kl_k1(const at::Tensor& logprobs, const at::Tensor& ref_logprobs) {
  return -log_ratio(logprobs, ref_logprobs);
}

at::Tensor kl_k2(const at::Tensor& logprobs, const at::Tensor& ref_logprobs) {
  return 0.5 * log_ratio(logprobs, ref_logprobs).pow(2);
}

at::Tensor kl_k3(const at::Tensor& logprobs, const at::Tensor& ref_logprobs) {
  at::Tensor lr = log_ratio(logprobs, ref_logprobs);
  return torch::exp(lr) - 1.0 - lr;
}

const Registry<KlEstimator>& kl_estimators() {
  static const Registry<KlEstimator> registry = [] {
    Registry<KlEstimator> r("KL estimator");
    r.add("k1", kl_k1);
    r.add("k2", kl_k2);
    r.add("k3", kl_k3);
    return r;
  }();
  return registry;
}

}  // namespace anchor
