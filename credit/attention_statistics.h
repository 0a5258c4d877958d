// Streaming attention statistics (DESIGN 5.4): an AttentionObserver that reduces each chunk of
// attention rows into O(N) accumulators the moment the model hands it over, so no
// [heads, N, N] map exists beyond one layer chunk. Everything the credit map needs is a
// linear function of these per-head sums, so head groups can be chosen after the pass
// (per batch or per sequence) without keeping any attention around.
//
// Coordinates: the forward runs over [prompt (left-padded, width P) | response (right-padded,
// width R)], so response token r of every row sits in column P + r, and real tokens of one
// row are contiguous — distances t - s are the same as in the row alone.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "trainer/model/attention_observer.h"

namespace anchor::credit {

// Per-sequence sums; observed head j = (index of the layer in `layers`) * heads + head.
struct AttentionStatistics {
  std::vector<int64_t> layers;  // observed layers
  int64_t heads = 0;            // attention heads per layer
  at::Tensor response_lengths;  // [B] int64
  at::Tensor lookback_sum;      // [B, J] double: sum over response rows t of sum_s A[t,s] (t - s)
  at::Tensor waad_heads;        // [B, J, R] double: sum_s A[t,s] min(t - s, W) per response row t
  at::Tensor fai_sums;          // [B, J, R] double: sum of A[t,s] over response rows t in [s+H_lo, s+H_hi]
  at::Tensor block_sums;        // [B, J, S, S] double: sum of A over (sentence i rows) x (sentence j keys);
                                // undefined without sentences
  at::Tensor sentence_sizes;    // [B, S] int64 tokens per sentence (undefined without sentences)
  int64_t num_heads() const { return static_cast<int64_t>(layers.size()) * heads; }
};

struct ReducerOptions {
  int64_t window = 10;
  int64_t horizon_low = 10;
  int64_t horizon_high = 100;
  int64_t chunk_rows = 128;
};

// Observes `layers` of one forward over a padded (prompt | response) batch and accumulates
// AttentionStatistics. sentence_ids [B, R] int64 (-1 = no sentence) turns on block sums.
class StreamingAttentionReducer : public AttentionObserver {
 public:
  StreamingAttentionReducer(std::vector<int64_t> layers, int64_t heads, int64_t response_begin,
                            const at::Tensor& response_lengths, int64_t response_width, ReducerOptions options,
                            const at::Tensor& sentence_ids = {});

  bool observes_layer(int64_t layer) const override;
  int64_t chunk_rows() const override { return options_.chunk_rows; }
  void on_chunk(const AttentionChunk& chunk) override;

  // The sums (moved to CPU); call once after the forward.
  AttentionStatistics finish();
  double seconds() const { return seconds_; }  // time spent reducing chunks

 private:
  void allocate(const at::Tensor& like);

  AttentionStatistics stats_;
  ReducerOptions options_;
  int64_t response_begin_ = 0, response_width_ = 0, num_sentences_ = 0;
  at::Tensor sentence_ids_;    // [B, R] or undefined
  at::Tensor sentence_onehot_; // [B, P + R, S] float on the attention's device
  at::Tensor lengths_device_;
  double seconds_ = 0;
};

// Rows of several micro-batches' statistics stacked into one, padding R (to at least
// min_width) and S with zeros.
AttentionStatistics concat_statistics(const std::vector<AttentionStatistics>& parts, int64_t min_width = 0);

}  // namespace anchor::credit
