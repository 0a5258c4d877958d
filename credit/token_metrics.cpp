#include "credit/token_metrics.h"

#include <torch/torch.h>

#include <algorithm>
#include <vector>

#include "credit/credit_options.h"
#include "trainer/common/error.h"

namespace anchor::credit {

at::Tensor response_mask(const at::Tensor& response_lengths, int64_t width) {
  return torch::arange(width, torch::kLong).unsqueeze(0).lt(response_lengths.to(torch::kLong).unsqueeze(1));
}

at::Tensor pooled_mean(const at::Tensor& sums, const at::Tensor& lengths, const BatchSum* batch_sum) {
  if (batch_sum == nullptr || !*batch_sum) {
    const at::Tensor pooled = sums.sum(0) / lengths.sum().clamp_min(1.0);
    return pooled.unsqueeze(0).expand_as(sums).contiguous();
  }
  const at::Tensor both = (*batch_sum)(torch::cat({sums.sum(0), lengths.sum().unsqueeze(0)}));
  const int64_t J = sums.size(1);
  const at::Tensor pooled = both.slice(0, 0, J) / both.slice(0, J, J + 1).clamp_min(1.0);
  return pooled.unsqueeze(0).expand_as(sums).contiguous();
}

at::Tensor lookback_distance(const AttentionStatistics& stats, HeadRanking ranking, const BatchSum* batch_sum) {
  const at::Tensor lengths = stats.response_lengths.to(torch::kDouble);
  if (ranking == HeadRanking::sequence) return stats.lookback_sum / lengths.clamp_min(1.0).unsqueeze(1);
  return pooled_mean(stats.lookback_sum, lengths, ranking == HeadRanking::batch ? batch_sum : nullptr);
}

at::Tensor head_sink_share(const AttentionStatistics& stats, HeadRanking ranking, const BatchSum* batch_sum) {
  if (!stats.sink_mass_sum.defined()) return torch::zeros_like(stats.lookback_sum);
  const at::Tensor lengths = stats.response_lengths.to(torch::kDouble);
  if (ranking == HeadRanking::sequence) return stats.sink_mass_sum / lengths.clamp_min(1.0).unsqueeze(1);
  return pooled_mean(stats.sink_mass_sum, lengths, ranking == HeadRanking::batch ? batch_sum : nullptr);
}

at::Tensor sink_tokens(const AttentionStatistics& stats) {
  const int64_t R = stats.waad_heads.size(2);
  const at::Tensor mask = response_mask(stats.response_lengths, R);
  if (!stats.response_sink_heads.defined()) return torch::zeros({mask.size(0), R}, torch::kBool);
  return stats.response_sink_heads.sum(1).gt(0).logical_and(mask);
}

HeadGroups head_groups(const at::Tensor& distance, double quantile, const at::Tensor& eligible) {
  const int64_t B = distance.size(0), J = distance.size(1);
  // Stable sort keeps the lower head index first among equal distances.
  const at::Tensor order = std::get<1>(torch::sort(distance, /*stable=*/true, /*dim=*/1, /*descending=*/false));
  HeadGroups g;
  g.local = torch::zeros({B, J}, torch::kBool);
  g.global = torch::zeros({B, J}, torch::kBool);
  if (!eligible.defined()) {
    const int64_t c = top_count(quantile, J);
    g.local.scatter_(1, order.slice(1, 0, c), true);
    g.global.scatter_(1, order.slice(1, J - c, J), true);
    return g;
  }
  const at::Tensor ok = eligible.to(torch::kBool).cpu();
  for (int64_t b = 0; b < B; ++b) {
    // This row's eligible heads in distance order.
    const at::Tensor ranked = order[b].index_select(0, ok[b].index_select(0, order[b]).nonzero().flatten());
    const int64_t n = ranked.size(0), c = top_count(quantile, n);
    if (c == 0) continue;
    g.local[b].index_fill_(0, ranked.slice(0, 0, c), true);
    g.global[b].index_fill_(0, ranked.slice(0, n - c, n), true);
  }
  return g;
}

namespace {
// Mean over the heads in `group` of per-head sums [B, J, R].
at::Tensor group_mean(const at::Tensor& per_head, const at::Tensor& group) {
  const at::Tensor w = group.to(torch::kDouble);
  return (per_head * w.unsqueeze(2)).sum(1) / w.sum(1, true).clamp_min(1.0);
}
}  // namespace

at::Tensor windowed_attention_distance(const AttentionStatistics& stats, const at::Tensor& local) {
  const at::Tensor mask = response_mask(stats.response_lengths, stats.waad_heads.size(2));
  return group_mean(stats.waad_heads, local) * mask;
}

at::Tensor fai_row_counts(const at::Tensor& response_lengths, int64_t width, int64_t horizon_low,
                          int64_t horizon_high) {
  const at::Tensor s = torch::arange(width, torch::kLong).unsqueeze(0);
  const at::Tensor last = response_lengths.to(torch::kLong).unsqueeze(1) - 1;
  const at::Tensor hi = torch::minimum(last, s + horizon_high);
  return (hi - (s + horizon_low) + 1).clamp_min(0);
}

at::Tensor future_attention_influence(const AttentionStatistics& stats, const at::Tensor& global,
                                      int64_t horizon_low, int64_t horizon_high) {
  const int64_t R = stats.fai_sums.size(2);
  const at::Tensor counts = fai_row_counts(stats.response_lengths, R, horizon_low, horizon_high).to(torch::kDouble);
  const at::Tensor sums = group_mean(stats.fai_sums, global);
  return torch::where(counts.gt(0), sums / counts.clamp_min(1.0), torch::zeros_like(sums));
}

at::Tensor preplan_signal(const at::Tensor& waad, const at::Tensor& response_lengths) {
  const int64_t R = waad.size(1);
  at::Tensor delta = torch::zeros_like(waad);
  if (R < 2) return delta;
  delta.slice(1, 0, R - 1).copy_((waad.slice(1, 0, R - 1) - waad.slice(1, 1, R)).abs());
  // Position t needs t + 1 inside the response.
  const at::Tensor has_next =
      torch::arange(R, torch::kLong).unsqueeze(0).lt(response_lengths.to(torch::kLong).unsqueeze(1) - 1);
  return delta * has_next;
}

at::Tensor top_share(const at::Tensor& values, const at::Tensor& response_lengths, double q,
                     const at::Tensor& eligible) {
  const int64_t B = values.size(0);
  at::Tensor out = torch::zeros(values.sizes(), torch::kBool);
  const at::Tensor lengths = response_lengths.to(torch::kLong).cpu();
  for (int64_t b = 0; b < B; ++b) {
    const int64_t len = lengths[b].item<int64_t>();
    int64_t k = top_count(q, len);
    if (k == 0) continue;
    at::Tensor order = std::get<1>(torch::sort(values[b].slice(0, 0, len), /*stable=*/true, 0, /*descending=*/true));
    if (eligible.defined()) {  // drop ineligible tokens, keep the share of the whole response
      order = order.index_select(0, eligible[b].slice(0, 0, len).to(torch::kBool).index_select(0, order).nonzero().flatten());
      k = std::min(k, order.size(0));
    }
    if (k > 0) out[b].index_fill_(0, order.slice(0, 0, k), true);
  }
  return out;
}

double response_median(const at::Tensor& row, int64_t len) {
  if (len <= 0) return 0.0;
  const at::Tensor sorted = std::get<0>(torch::sort(row.slice(0, 0, len).to(torch::kDouble)));
  auto v = sorted.accessor<double, 1>();
  return len % 2 == 1 ? v[len / 2] : 0.5 * (v[len / 2 - 1] + v[len / 2]);
}

DominatedAnchors dominated_anchors(const at::Tensor& waad, const at::Tensor& delta, const at::Tensor& anchors,
                                   const at::Tensor& response_lengths, int64_t lookback,
                                   std::optional<double> tau_waad, std::optional<double> tau_delta,
                                   const at::Tensor& eligible) {
  const int64_t B = waad.size(0), R = waad.size(1);
  DominatedAnchors out;
  out.dominated = torch::zeros({B, R}, torch::kBool);
  out.intro = torch::zeros({B, R}, torch::kBool);
  const at::Tensor w64 = waad.to(torch::kDouble).contiguous(), d64 = delta.to(torch::kDouble).contiguous();
  const at::Tensor anchors_b = anchors.to(torch::kBool).contiguous();
  auto w = w64.accessor<double, 2>();
  auto d = d64.accessor<double, 2>();
  auto a = anchors_b.accessor<bool, 2>();
  auto dom = out.dominated.accessor<bool, 2>();
  auto intro = out.intro.accessor<bool, 2>();
  const at::Tensor ok_t = eligible.defined() ? eligible.to(torch::kBool).contiguous() : torch::ones({B, R}, torch::kBool);
  auto ok = ok_t.accessor<bool, 2>();
  const at::Tensor lengths = response_lengths.to(torch::kLong).cpu();
  for (int64_t b = 0; b < B; ++b) {
    const int64_t len = lengths[b].item<int64_t>();
    const double tw = tau_waad ? *tau_waad : response_median(w64[b], len);
    const double td = tau_delta ? *tau_delta : response_median(d64[b], len);
    for (int64_t t = 1; t < len; ++t) {
      if (!a[b][t] || w[b][t] > tw) continue;
      int64_t best = -1;
      for (int64_t u = std::max<int64_t>(0, t - lookback); u < t; ++u)
        if (ok[b][u] && (best < 0 || d[b][u] > d[b][best])) best = u;
      if (best >= 0 && d[b][best] >= td) {
        dom[b][t] = true;
        intro[b][best] = true;
      }
    }
  }
  return out;
}

}  // namespace anchor::credit
