// Token-level credit metrics from streamed attention statistics (docs/design.md §5.2 - 5.3): head
// groups by look-back distance, WAAD, FAI, the preplan signal Δ, top-share token selection,
// and locally dominated anchors with their introductory tokens. Pure tensor functions on CPU
// tensors; [B, R] results are 0 / false at response padding.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "credit/attention_statistics.h"

namespace anchor::credit {

// Sums a tensor over the data-parallel ranks (docs/design.md §7), so that statistics pooled over the
// step batch ("batch" head ranking, layer choice, receiver heads) are pooled over the global
// batch and every rank builds the same map as one process would. nullptr = this batch alone.
using BatchSum = std::function<at::Tensor(const at::Tensor&)>;

// sums [B, J] pooled over the batch (and the ranks): every row gets sum over rows / total
// response tokens (lengths [B] double).
at::Tensor pooled_mean(const at::Tensor& sums, const at::Tensor& lengths, const BatchSum* batch_sum);

// [B, R] bool: r < response_lengths[b].
at::Tensor response_mask(const at::Tensor& response_lengths, int64_t width);

// d(l,h) [B, J] double: mean look-back distance over response tokens, pooled over the batch
// ("batch": every row gets the same values, summed over ranks by batch_sum), over the rows
// given ("micro_batch": the caller passes one micro-batch; batch_sum is not used) or per row
// ("sequence"). 0 where no tokens.
at::Tensor lookback_distance(const AttentionStatistics& stats, HeadRanking ranking,
                             const BatchSum* batch_sum = nullptr);

// Mean share of a head's attention on its sink keys over response tokens [B, J], pooled like
// lookback_distance. 0 without sink detection.
at::Tensor head_sink_share(const AttentionStatistics& stats, HeadRanking ranking,
                           const BatchSum* batch_sum = nullptr);

// [B, R] bool: response tokens that are a sink key of at least one observed head.
at::Tensor sink_tokens(const AttentionStatistics& stats);

// Bottom / top ceil(quantile * J') heads of each row by distance among its J' eligible heads
// (eligible [B, J] bool, undefined = all; ties: lower head index is more local). [B, J] bool
// each. With few heads the two groups can share heads; with none eligible both are empty.
struct HeadGroups {
  at::Tensor local, global;
};
HeadGroups head_groups(const at::Tensor& distance, double quantile, const at::Tensor& eligible = {});

// WAAD_t [B, R]: Σ_s Ā_loc[t,s] min(t-s, W), Ā_loc the plain mean of the local heads' maps.
at::Tensor windowed_attention_distance(const AttentionStatistics& stats, const at::Tensor& local);

// Number of response rows t with s + H_lo <= t <= s + H_hi for each response key s: [B, R].
at::Tensor fai_row_counts(const at::Tensor& response_lengths, int64_t width, int64_t horizon_low,
                          int64_t horizon_high);
// FAI_s [B, R]: mean over those rows of Ā_glob[t, s]; 0 when there are none (the last H_lo
// tokens of a response, or a response shorter than H_lo + 1).
at::Tensor future_attention_influence(const AttentionStatistics& stats, const at::Tensor& global,
                                      int64_t horizon_low, int64_t horizon_high);

// Δ_t = |WAAD_t - WAAD_{t+1}| [B, R]; 0 for the last response token (no successor).
at::Tensor preplan_signal(const at::Tensor& waad, const at::Tensor& response_lengths);

// [B, R] bool: the top ceil(q * len) tokens of each response by value (ties: earlier first),
// chosen among eligible tokens only when eligible [B, R] bool is given.
at::Tensor top_share(const at::Tensor& values, const at::Tensor& response_lengths, double q,
                     const at::Tensor& eligible = {});

// Median of the first len values (mean of the two middle ones for even len); 0 when empty.
double response_median(const at::Tensor& row, int64_t len);

// Locally dominated anchors (5.3): anchors t with WAAD_t <= τ_waad and max_{u in t-k..t-1} Δ_u
// >= τ_Δ, u inside the response (and eligible, when eligible [B, R] is given); intro(t) = the
// first argmax of that window. Thresholds are the per-response medians unless given.
struct DominatedAnchors {
  at::Tensor dominated;  // [B, R] bool
  at::Tensor intro;      // [B, R] bool: tokens that introduce at least one dominated anchor
};
DominatedAnchors dominated_anchors(const at::Tensor& waad, const at::Tensor& delta, const at::Tensor& anchors,
                                   const at::Tensor& response_lengths, int64_t lookback,
                                   std::optional<double> tau_waad, std::optional<double> tau_delta,
                                   const at::Tensor& eligible = {});

}  // namespace anchor::credit
