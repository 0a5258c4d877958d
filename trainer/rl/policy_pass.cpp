#include "trainer/rl/policy_pass.h"

#include <torch/torch.h>

#include <vector>

#include "trainer/model/response_statistics.h"
#include "trainer/rl/micro_batch_reducer.h"

namespace anchor {

PolicyPass policy_pass(const LlamaModel& model, const StepBatch& b, double temperature, int64_t micro,
                       bool with_entropy, const credit::CreditOptions* credit, const at::Tensor& sentence_ids,
                       bool share_prompts) {
  torch::NoGradGuard no_grad;
  const int64_t N = b.response_ids.size(0), R = b.response_ids.size(1);
  PolicyPass out;
  out.logprobs = torch::zeros({N, R}, torch::kFloat);
  if (with_entropy) out.entropy = torch::zeros({N, R}, torch::kFloat);
  std::vector<int64_t> layers;
  if (credit) layers = credit::observed_layers(credit->layers, model.config().num_hidden_layers);
  std::vector<credit::AttentionStatistics> parts;
  for (int64_t s = 0; s < N; s += micro) {
    const at::Tensor rows = torch::arange(s, std::min(N, s + micro), torch::kLong);
    const StepBatch mb = select_rows(b, rows);
    const int64_t width = mb.response_ids.size(1);
    std::optional<credit::StreamingAttentionReducer> reducer;
    if (credit)
      start_micro_batch_reducer(reducer, layers, model.config().num_attention_heads, mb, rows, sentence_ids, *credit);
    ResponseStatisticsOptions forward;
    forward.temperature = temperature;
    forward.with_entropy = with_entropy;
    forward.share_prompts = share_prompts;
    forward.observer = reducer ? &*reducer : nullptr;
    const ResponseStatistics st =
        response_statistics(model, mb.prompt_ids, mb.prompt_mask, mb.response_ids, mb.response_mask, forward);
    out.logprobs.slice(0, s, s + rows.size(0)).slice(1, 0, width).copy_(st.logprobs.cpu());
    if (with_entropy) out.entropy.slice(0, s, s + rows.size(0)).slice(1, 0, width).copy_(st.entropy.cpu());
    if (reducer) {
      parts.push_back(reducer->finish());
      out.credit_seconds += reducer->seconds();
    }
  }
  if (!parts.empty()) out.attention = credit::concat_statistics(parts, R);
  return out;
}

}  // namespace anchor
