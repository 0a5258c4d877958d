#include "trainer/model/response_statistics.h"

#include <torch/torch.h>

#include "trainer/model/fused_logprobs.h"

namespace anchor {

ResponseStatistics response_statistics(const LlamaModel& model, const at::Tensor& prompt_ids,
                                       const at::Tensor& prompt_mask, const at::Tensor& response_ids,
                                       const at::Tensor& response_mask, double temperature, bool with_entropy,
                                       AttentionObserver* observer, bool entropy_grad) {
  const auto device = model.device();
  const int64_t P = prompt_ids.size(1), R = response_ids.size(1);
  at::Tensor ids = torch::cat({prompt_ids, response_ids}, 1).to(device);
  at::Tensor mask = torch::cat({prompt_mask, response_mask}, 1).to(device, torch::kBool);
  ForwardInputs in = padded_batch_inputs(ids, mask);
  in.observer = observer;
  // Only positions P-1 .. P+R-2 predict response tokens: project just those to the vocabulary,
  // chunk by chunk (fused_logprobs.h: no [B, R, vocab] tensor).
  const int64_t B = prompt_ids.size(0);
  const at::Tensor hidden = model.hidden_states(in).slice(1, P - 1, P - 1 + R).reshape({B * R, -1});
  const FusedTokenStatistics st =
      fused_token_logprobs(hidden, model.output_weight(), response_ids.to(device).reshape({B * R}), temperature,
                           with_entropy, entropy_grad, model.compute_dtype());
  const at::Tensor invalid = response_mask.to(device, torch::kBool).logical_not();
  ResponseStatistics out;
  out.logprobs = st.logprobs.view({B, R}).masked_fill(invalid, 0.0);
  if (with_entropy) out.entropy = st.entropy.view({B, R}).masked_fill(invalid, 0.0);
  return out;
}

}  // namespace anchor
