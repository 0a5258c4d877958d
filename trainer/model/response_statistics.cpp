#include "trainer/model/response_statistics.h"

#include <torch/torch.h>

#include "trainer/model/fused_logprobs.h"

namespace anchor {
namespace {

// The distinct prompts of a batch: `first` [U] the first row holding each, `of_row` [B] the
// distinct prompt (0..U-1) of every row. Prompts are equal when their ids and masks are.
struct DistinctPrompts {
  at::Tensor first, of_row;
  int64_t count() const { return first.size(0); }
};

DistinctPrompts distinct_prompts(const at::Tensor& ids, const at::Tensor& mask) {
  const at::Tensor key = ids.cpu().masked_fill(mask.cpu().to(torch::kBool).logical_not(), -1);
  const auto unique = torch::unique_dim(key, 0, /*sorted=*/true, /*return_inverse=*/true);
  const at::Tensor of_row = std::get<1>(unique);
  const int64_t U = std::get<0>(unique).size(0), B = ids.size(0);
  const at::Tensor first = torch::full({U}, B, torch::kLong)
                               .scatter_reduce(0, of_row, torch::arange(B, torch::kLong), "amin", /*include_self=*/true);
  return {first, of_row};
}

}  // namespace

ResponseStatistics response_statistics(const LlamaModel& model, const at::Tensor& prompt_ids,
                                       const at::Tensor& prompt_mask, const at::Tensor& response_ids,
                                       const at::Tensor& response_mask, const ResponseStatisticsOptions& o) {
  const auto device = model.device();
  const int64_t B = prompt_ids.size(0), P = prompt_ids.size(1), R = response_ids.size(1);
  const bool recomputes_layers = model.activation_checkpointing() && at::GradMode::is_enabled();
  const DistinctPrompts prompts =
      o.share_prompts && !recomputes_layers && B > 1 && R > 0 ? distinct_prompts(prompt_ids, prompt_mask) : DistinctPrompts{};
  const bool share = prompts.first.defined() && prompts.count() < B;
  const at::Tensor response_valid = response_mask.to(device, torch::kBool);

  // Only positions P-1 .. P+R-2 predict response tokens: just those are projected to the
  // vocabulary, chunk by chunk (fused_logprobs.h: no [B, R, vocab] tensor).
  ResponseStatistics out;
  at::Tensor hidden;  // [B, R, hidden]: the state that predicts each response token
  if (!share) {
    const at::Tensor ids = torch::cat({prompt_ids, response_ids}, 1).to(device);
    const at::Tensor mask = torch::cat({prompt_mask.to(device, torch::kBool), response_valid}, 1);
    ForwardInputs in = padded_batch_inputs(ids, mask);
    in.observer = o.observer;
    hidden = model.hidden_states(in).slice(1, P - 1, P - 1 + R);
    out.positions = B * (P + R);
  } else {
    // 1. The distinct prompts, once each; their keys and values are recorded per layer.
    const at::Tensor first = prompts.first.to(device);
    const at::Tensor unique_mask = prompt_mask.to(device, torch::kBool).index_select(0, first);
    SharedPrefix prefix;
    ForwardInputs prompt_in = padded_batch_inputs(prompt_ids.to(device).index_select(0, first), unique_mask);
    prompt_in.record_prefix = &prefix;
    const at::Tensor last_prompt_state = model.hidden_states(prompt_in).select(1, P - 1);  // [U, hidden]
    // 2. The responses: row b attends to its prompt's keys, then its own. Positions continue
    //    from the prompt's real length, as in the unshared row.
    prefix.rows = prompts.of_row.to(device);
    ForwardInputs in;
    in.input_ids = response_ids.to(device);
    const at::Tensor prompt_length = unique_mask.sum(1).index_select(0, prefix.rows);  // [B]
    in.position_ids = (prompt_length.unsqueeze(1) + response_valid.to(torch::kLong).cumsum(1) - 1).clamp_min(0);
    in.key_mask = torch::cat({unique_mask.index_select(0, prefix.rows), response_valid}, 1);
    in.prefix = &prefix;
    in.observer = o.observer;
    const at::Tensor response_states = model.hidden_states(in);  // [B, R, hidden]
    hidden = torch::cat({last_prompt_state.index_select(0, prefix.rows).unsqueeze(1),
                         response_states.slice(1, 0, R - 1)}, 1);
    out.positions = prompts.count() * P + B * R;
  }
  const FusedTokenStatistics st =
      fused_token_logprobs(hidden.reshape({B * R, -1}), model.output_weight(), response_ids.to(device).reshape({B * R}),
                           o.temperature, o.with_entropy, o.entropy_grad, model.compute_dtype());
  const at::Tensor invalid = response_valid.logical_not();
  out.logprobs = st.logprobs.view({B, R}).masked_fill(invalid, 0.0);
  if (o.with_entropy) out.entropy = st.entropy.view({B, R}).masked_fill(invalid, 0.0);
  return out;
}

}  // namespace anchor
