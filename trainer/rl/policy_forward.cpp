#include "trainer/rl/policy_forward.h"

#include <torch/torch.h>

#include "trainer/model/token_statistics.h"

namespace anchor {

ResponseStatistics response_statistics(const LlamaModel& model, const at::Tensor& prompt_ids,
                                       const at::Tensor& prompt_mask, const at::Tensor& response_ids,
                                       const at::Tensor& response_mask, double temperature, bool with_entropy,
                                       AttentionObserver* observer) {
  const auto device = model.device();
  const int64_t P = prompt_ids.size(1), R = response_ids.size(1);
  at::Tensor ids = torch::cat({prompt_ids, response_ids}, 1).to(device);
  at::Tensor mask = torch::cat({prompt_mask, response_mask}, 1).to(device, torch::kBool);
  ForwardInputs in = padded_batch_inputs(ids, mask);
  in.observer = observer;
  // Only positions P-1 .. P+R-2 predict response tokens: project just those to the vocabulary.
  at::Tensor hidden = model.hidden_states(in).slice(1, P - 1, P - 1 + R);
  at::Tensor logits = model.logits(hidden);
  if (temperature != 1.0) logits = logits / temperature;
  at::Tensor valid = response_mask.to(device, torch::kBool);
  ResponseStatistics out;
  out.logprobs = token_logprobs(logits, response_ids.to(device)).masked_fill(valid.logical_not(), 0.0);
  if (with_entropy) out.entropy = token_entropy(logits).masked_fill(valid.logical_not(), 0.0);
  return out;
}

}  // namespace anchor
