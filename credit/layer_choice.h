// Which layers to observe, by measurement (credit.layers: auto, docs/design.md §5.7): per layer, how
// many of its heads are clearly local or clearly global once attention sinks are set aside.
// On SmolLM2 the default middle layers hold almost no local head and their "global" heads are
// sink heads, so the layers are chosen from the first step's attention over every layer.
#pragma once

#include <cstdint>
#include <vector>

#include "credit/attention_statistics.h"
#include "credit/credit_options.h"
#include "credit/token_metrics.h"

namespace anchor::credit {

struct LayerProfile {
  int64_t layer = 0;
  int64_t heads = 0;
  // Look-back distance d(l, h) pooled over the batch (from the statistics as collected: raw
  // under sinks: keep, renormalised over non-sink keys under exclude).
  double mean_lookback = 0, min_lookback = 0, max_lookback = 0;
  double first_token_share = 0;  // mean over heads of the attention share on token 0
  double sink_share = 0;         // mean over heads of the share on all sink keys
  int64_t sink_heads = 0;        // heads with sink share > credit.sink_head_share
  int64_t local_heads = 0;       // non-sink heads with d <= credit.window
  int64_t global_heads = 0;      // non-sink heads with d >= 2 credit.horizon_low
};

// One profile per observed layer of `stats`.
// batch_sum pools over data-parallel ranks (every rank then chooses the same layers).
std::vector<LayerProfile> layer_profiles(const AttentionStatistics& stats, const CreditOptions& options,
                                         const BatchSum* batch_sum = nullptr);

// The `count` layers (sorted) with the most heads that are clearly local or clearly global,
// layers that have both first; ties go to the layer nearer the middle of the model.
std::vector<int64_t> choose_layers(const std::vector<LayerProfile>& profiles, int64_t num_layers, int64_t count = 5);

}  // namespace anchor::credit
