#include "credit/gtpo_advantages.h"

#include <torch/torch.h>

#include "credit/token_metrics.h"
#include "trainer/common/error.h"

namespace anchor::credit {

at::Tensor gtpo_token_advantages(const at::Tensor& correct_in, const at::Tensor& entropy_in,
                                 const at::Tensor& response_lengths, const GtpoOptions& o) {
  const int64_t B = entropy_in.size(0), R = entropy_in.size(1), G = o.group_size;
  AR_CHECK(G >= 1 && B % G == 0, "gtpo: ", B, " responses do not split into groups of ", G);
  AR_CHECK(correct_in.numel() == B && response_lengths.numel() == B, "gtpo: expected ", B,
           " correctness flags and lengths");
  const at::Tensor entropy = entropy_in.detach().cpu().to(torch::kDouble).clamp_min(o.eps);
  const at::Tensor active = response_mask(response_lengths.cpu(), R);        // [B, R]
  const at::Tensor active_d = active.to(torch::kDouble);
  const at::Tensor correct = correct_in.cpu().to(torch::kBool).view({B, 1});  // [B, 1]
  at::Tensor out = torch::zeros({B, R}, torch::kDouble);
  for (int64_t g = 0; g < B; g += G) {
    const at::Tensor on = active_d.slice(0, g, g + G), ok = correct.slice(0, g, g + G);
    const int64_t n_ok = ok.sum().item<int64_t>();
    if (n_ok == 0 || n_ok == G) continue;  // no contrast in the group: no signal, as under GRPO
    const at::Tensor pos = on * ok.to(torch::kDouble), neg = on * ok.logical_not().to(torch::kDouble);
    const at::Tensor H = entropy.slice(0, g, g + G);
    // O+: shares of the entropy at each position (equal shares where every entropy is 0).
    const at::Tensor d = pos.sum(0, true), pos_h = H * pos, pos_sum = pos_h.sum(0, true);
    const at::Tensor pos_share = torch::where(pos_sum > 0, pos_h / pos_sum.clamp_min(1e-300), pos / d.clamp_min(1));
    // O-: shares of the inverse entropy.
    const at::Tensor h = neg.sum(0, true), inv = neg / H, inv_sum = inv.sum(0, true);
    const at::Tensor neg_share = inv / inv_sum.clamp_min(1e-300);
    const at::Tensor reward = pos * (o.alpha_reward + o.alpha_entropy * d * pos_share) -
                              neg * (o.alpha_reward + o.alpha_entropy * h * neg_share);
    const double tokens = on.sum().item<double>();
    const double mean = reward.sum().item<double>() / tokens;
    const double var = (((reward - mean) * on).pow(2)).sum().item<double>() / tokens;
    out.slice(0, g, g + G).copy_((reward - mean) / (std::sqrt(var) + o.eps) * on);
  }
  return out.to(torch::kFloat);
}

}  // namespace anchor::credit
