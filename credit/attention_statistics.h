// Streaming attention statistics (docs/design.md §5.4): an AttentionObserver that reduces each chunk of
// attention rows into O(N) accumulators the moment the model hands it over, so no
// [heads, N, N] map exists beyond one layer chunk. Everything the credit map needs is a
// linear function of these per-head sums, so head groups can be chosen after the pass
// (per batch or per sequence) without keeping any attention around.
//
// Coordinates: the forward runs over [prompt (left-padded, width P) | response (right-padded,
// width R)], so response token r of every row sits in column P + r, and real tokens of one
// row are contiguous — distances t - s are the same as in the row alone. Token 0 of row b sits
// in column P - prompt_length[b].
//
// Sinks need the whole layer before its rows can be renormalised, so the reducer asks the
// model for a survey sweep of each observed layer (scores and softmax only): it counts, per
// head and key, the response rows that give the key more than sink_key_share; the real sweep
// then knows each head's sink keys. Memory stays O(heads x chunk x N).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "credit/credit_options.h"
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
  // Attention sinks (docs/design.md §5.7), found per head and sequence in a survey sweep of each layer:
  // token 0 of the sequence, and every key that takes more than sink_key_share of a response
  // row's attention in more than sink_query_share of the response rows. Zero without detection.
  bool sinks_detected = false;
  bool sinks_excluded = false;  // lookback / WAAD / FAI / blocks use rows renormalised over non-sink keys
  at::Tensor sink_mass_sum;      // [B, J] double: sum over response rows of the raw attention on sink keys
  at::Tensor first_token_mass_sum;  // [B, J] double: the same for token 0 alone
  at::Tensor prompt_sink_heads;    // [B, layers, Pmax] int64: heads of the layer for which prompt token p
                                   // (0 = token 0) is a sink
  at::Tensor response_sink_heads;  // [B, layers, R] int64: the same for response tokens
  int64_t num_heads() const { return static_cast<int64_t>(layers.size()) * heads; }
};

// Defaults are those of the credit: section (CreditOptions), the one source of truth.
struct ReducerOptions {
  int64_t window = CreditOptions().window;
  int64_t horizon_low = CreditOptions().horizon_low;
  int64_t horizon_high = CreditOptions().horizon_high;
  int64_t chunk_rows = CreditOptions().chunk_rows;
  bool detect_sinks = true;    // survey each layer for sink keys (costs one more softmax per observed layer)
  bool exclude_sinks = CreditOptions().sinks == SinkHandling::exclude;  // renormalise rows over non-sink keys
  // A key is a sink of a head if it takes more than sink_key_share of a row in more than
  // sink_query_share of the response rows.
  double sink_key_share = CreditOptions().sink_key_share;
  double sink_query_share = CreditOptions().sink_query_share;
  // credit.attention_weighting value_norm: every row's probabilities are multiplied by the norm of
  // the head's value vector at each key and renormalised before anything else reads them.
  bool value_weighted = CreditOptions().attention_weighting == AttentionWeighting::value_norm;
};

// The reducer settings of a credit: section (sinks are always detected; excluded on request).
ReducerOptions reducer_options(const CreditOptions& credit);

// Observes `layers` of one forward over a padded (prompt | response) batch and accumulates
// AttentionStatistics. sentence_ids [B, R] int64 (-1 = no sentence) turns on block sums.
class StreamingAttentionReducer : public AttentionObserver {
 public:
  // prompt_lengths [B] (undefined: every prompt fills the P columns).
  StreamingAttentionReducer(std::vector<int64_t> layers, int64_t heads, int64_t response_begin,
                            const at::Tensor& response_lengths, int64_t response_width, ReducerOptions options,
                            const at::Tensor& sentence_ids = {}, const at::Tensor& prompt_lengths = {});

  bool observes_layer(int64_t layer) const override;
  bool surveys_layer(int64_t layer) const override { return options_.detect_sinks && observes_layer(layer); }
  int64_t chunk_rows() const override { return options_.chunk_rows; }
  bool wants_value_norms() const override { return options_.value_weighted; }
  void on_chunk(const AttentionChunk& chunk) override;

  // The sums (moved to CPU); call once after the forward.
  AttentionStatistics finish();
  double seconds() const { return seconds_; }  // time spent reducing chunks

 private:
  void allocate(const at::Tensor& like);
  void zero_sums(const at::TensorOptions& acc);
  void survey(const at::Tensor& rows, const at::Tensor& row_valid, int64_t layer);
  void decide_sinks(int64_t layer, const at::Tensor& like);

  AttentionStatistics stats_;
  ReducerOptions options_;
  int64_t response_begin_ = 0, response_width_ = 0, num_sentences_ = 0;
  at::Tensor sentence_ids_;    // [B, R] or undefined
  at::Tensor sentence_onehot_; // [B, P + R, S] float on the attention's device
  at::Tensor lengths_device_;
  at::Tensor prompt_lengths_;     // [B] int64 CPU
  at::Tensor first_column_;       // [B] int64 on the attention's device: column of token 0
  at::Tensor survey_counts_;      // [B, H, P + R]: rows giving each key > sink_key_share (layer being surveyed)
  int64_t survey_layer_ = -1, sink_layer_ = -1;
  at::Tensor sinks_;              // [B, H, P + R] 0/1 in the attention dtype: sink keys of sink_layer_
  double seconds_ = 0;
};

// Rows of several micro-batches' statistics stacked into one, padding R (to at least
// min_width), S and the prompt width with zeros.
AttentionStatistics concat_statistics(const std::vector<AttentionStatistics>& parts, int64_t min_width = 0);

// The statistics of rows `rows` [n] int64 (widths unchanged).
AttentionStatistics select_rows(const AttentionStatistics& stats, const at::Tensor& rows);

// The statistics of a subset of the observed layers (sorted; each must have been observed).
AttentionStatistics select_layers(const AttentionStatistics& stats, const std::vector<int64_t>& layers);

}  // namespace anchor::credit
