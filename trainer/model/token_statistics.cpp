#include "trainer/model/token_statistics.h"

#include <torch/torch.h>

namespace anchor {

at::Tensor token_logprobs(const at::Tensor& logits, const at::Tensor& targets) {
  at::Tensor logp = torch::log_softmax(logits.to(torch::kFloat), -1);
  return logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1);
}

at::Tensor token_entropy(const at::Tensor& logits) {
  at::Tensor logp = torch::log_softmax(logits.to(torch::kFloat), -1);
  return -(logp.exp() * logp).sum(-1);
}

}  // namespace anchor
