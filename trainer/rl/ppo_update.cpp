#include "trainer/rl/ppo_update.h"

#include <torch/torch.h>

#include <chrono>

#include "trainer/common/error.h"
#include "trainer/model/response_statistics.h"

namespace anchor {

int64_t micro_batch_count(int64_t rows, int64_t micro_batch_size) {
  return (rows + micro_batch_size - 1) / micro_batch_size;
}

UpdateStats accumulate_policy_gradients(const LlamaModel& model, const UpdateInputs& in, const at::Tensor& rows,
                                        const UpdateOptions& o) {
  using Clock = std::chrono::steady_clock;
  AR_CHECK(o.policy_loss != nullptr, "accumulate_policy_gradients: no policy loss");
  UpdateStats stats;
  const double denominator = o.denominator > 0 ? o.denominator
                                               : aggregation_denominator(o.aggregation,
                                                                         in.batch.response_mask.index_select(0, rows));
  if (denominator <= 0) return stats;
  const int64_t n = rows.size(0);
  for (int64_t s = 0; s < n; s += o.micro_batch_size) {
    const at::Tensor micro = rows.slice(0, s, std::min(n, s + o.micro_batch_size));
    const StepBatch mb = select_rows(in.batch, micro);
    const int64_t R = mb.response_ids.size(1);
    const auto t0 = Clock::now();
    ResponseStatisticsOptions forward;
    forward.temperature = o.temperature;
    forward.with_entropy = true;
    forward.entropy_grad = o.entropy_coef != 0;
    forward.share_prompts = o.share_prompts;
    if (in.credit) forward.observer = in.credit->observe(mb, micro);
    const ResponseStatistics st =
        response_statistics(model, mb.prompt_ids, mb.prompt_mask, mb.response_ids, mb.response_mask, forward);
    const auto dev = st.logprobs.device();
    const at::Tensor mask = mb.response_mask.to(dev);
    auto rows_of = [&](const at::Tensor& t) { return t.index_select(0, micro).slice(1, 0, R).to(dev); };
    const at::Tensor old = in.old_logprobs.defined() ? rows_of(in.old_logprobs) : st.logprobs.detach();
    at::Tensor advantages = rows_of(in.token_advantages);
    if (in.credit) advantages = advantages * in.credit->gamma(micro, R).to(dev);
    const PolicyLossTerms terms = (*o.policy_loss)(st.logprobs, old, advantages, o.loss);
    if (!stats.logprobs.defined()) stats.logprobs = torch::zeros(in.batch.response_ids.sizes(), torch::kFloat);
    stats.logprobs.index_copy_(0, micro, torch::constant_pad_nd(st.logprobs.detach().cpu(),
                                                                {0, in.batch.response_ids.size(1) - R}));
    at::Tensor loss = aggregate_loss(terms.loss, mask, o.aggregation, denominator, o.norm_length);
    if (o.kl != nullptr && o.kl_coef != 0 && in.ref_logprobs.defined())
      loss = loss + o.kl_coef * aggregate_loss((*o.kl)(st.logprobs, rows_of(in.ref_logprobs)), mask, o.aggregation,
                                               denominator, o.norm_length);
    if (o.entropy_coef != 0)
      loss = loss - o.entropy_coef * aggregate_loss(st.entropy, mask, o.aggregation, denominator, o.norm_length);
    const auto t1 = Clock::now();
    loss.backward();
    if (o.after_backward) o.after_backward();
    const auto t2 = Clock::now();
    stats.forward_seconds += std::chrono::duration<double>(t1 - t0).count();
    stats.backward_seconds += std::chrono::duration<double>(t2 - t1).count();
    stats.positions += st.positions;
    // One host sync per micro-batch for the logged statistics.
    const at::Tensor maskf = mask.to(torch::kFloat);
    const at::Tensor summary = torch::stack({loss.detach(), (terms.clipped.to(torch::kFloat) * maskf).sum(),
                                             (st.entropy.detach() * maskf).sum(), maskf.sum()})
                                   .to(torch::kCPU, torch::kDouble);
    const double* v = summary.data_ptr<double>();
    stats.loss += v[0];
    stats.clipped_tokens += v[1];
    stats.entropy_sum += v[2];
    stats.tokens += static_cast<int64_t>(v[3]);
  }
  return stats;
}

}  // namespace anchor
