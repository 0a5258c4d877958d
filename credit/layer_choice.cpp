#include "credit/layer_choice.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "credit/token_metrics.h"
#include "trainer/common/error.h"

namespace anchor::credit {

std::vector<LayerProfile> layer_profiles(const AttentionStatistics& stats, const CreditOptions& o,
                                         const BatchSum* batch_sum) {
  const at::Tensor d = lookback_distance(stats, HeadRanking::batch, batch_sum)[0];   // [J]
  const at::Tensor sink = head_sink_share(stats, HeadRanking::batch, batch_sum)[0];  // [J]
  const at::Tensor first =
      stats.first_token_mass_sum.defined()
          ? pooled_mean(stats.first_token_mass_sum, stats.response_lengths.to(torch::kDouble), batch_sum)[0]
          : torch::zeros_like(d);
  std::vector<LayerProfile> out;
  const int64_t H = stats.heads;
  for (size_t i = 0; i < stats.layers.size(); ++i) {
    const int64_t j0 = static_cast<int64_t>(i) * H;
    const at::Tensor dl = d.slice(0, j0, j0 + H), sl = sink.slice(0, j0, j0 + H);
    const at::Tensor non_sink = sl.le(o.sink_head_share);
    LayerProfile p;
    p.layer = stats.layers[i];
    p.heads = H;
    p.mean_lookback = dl.mean().item<double>();
    p.min_lookback = dl.min().item<double>();
    p.max_lookback = dl.max().item<double>();
    p.first_token_share = first.slice(0, j0, j0 + H).mean().item<double>();
    p.sink_share = sl.mean().item<double>();
    p.sink_heads = non_sink.logical_not().sum().item<int64_t>();
    p.local_heads = non_sink.logical_and(dl.le(static_cast<double>(o.window))).sum().item<int64_t>();
    p.global_heads = non_sink.logical_and(dl.ge(2.0 * static_cast<double>(o.horizon_low))).sum().item<int64_t>();
    out.push_back(p);
  }
  return out;
}

std::vector<int64_t> choose_layers(const std::vector<LayerProfile>& profiles, int64_t num_layers, int64_t count) {
  AR_CHECK(!profiles.empty(), "credit.layers: auto needs the attention of at least one layer");
  std::vector<const LayerProfile*> order;
  for (const auto& p : profiles) order.push_back(&p);
  const double middle = 0.5 * static_cast<double>(num_layers - 1);
  std::stable_sort(order.begin(), order.end(), [&](const LayerProfile* a, const LayerProfile* b) {
    const bool both_a = a->local_heads > 0 && a->global_heads > 0, both_b = b->local_heads > 0 && b->global_heads > 0;
    if (both_a != both_b) return both_a;
    const int64_t na = a->local_heads + a->global_heads, nb = b->local_heads + b->global_heads;
    if (na != nb) return na > nb;
    return std::abs(static_cast<double>(a->layer) - middle) < std::abs(static_cast<double>(b->layer) - middle);
  });
  std::vector<int64_t> chosen;
  for (size_t i = 0; i < order.size() && static_cast<int64_t>(i) < count; ++i) chosen.push_back(order[i]->layer);
  std::sort(chosen.begin(), chosen.end());
  return chosen;
}

}  // namespace anchor::credit
