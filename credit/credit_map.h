// CreditMap: everything docs/design.md §5 derives from one batch's attention statistics — head groups,
// WAAD / FAI / Δ per token, preplan / anchor / dominated / introductory tokens and, with
// sentences, thought-anchor receiver scores. token_weights.h turns a map into γ per token.
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

#include "credit/attention_statistics.h"
#include "credit/credit_options.h"
#include "credit/thought_anchors.h"
#include "credit/token_metrics.h"

namespace anchor::credit {

struct CreditMap {
  at::Tensor valid;                               // [B, R] bool response tokens
  at::Tensor head_distance;                       // [B, J] look-back distance d(l, h)
  at::Tensor head_sink_share;                     // [B, J] mean attention on the head's sink keys
  at::Tensor eligible_heads;                      // [B, J] bool: heads that may join a group
  at::Tensor sink_tokens;                         // [B, R] bool: response tokens that are sink keys
  HeadGroups heads;                               // local / global [B, J]
  at::Tensor waad, fai, delta;                    // [B, R] double
  at::Tensor preplan, anchor, dominated, intro;   // [B, R] bool
  // Thought anchors (defined only when sentence statistics were collected).
  at::Tensor sentence_ids;                        // [B, R] int64, -1 = none
  VerticalScores vertical;                        // [B, J, S] / [B, S]
  std::vector<int64_t> receiver_heads;
  at::Tensor sentence_scores;                     // [B, S] double, NaN = undefined
  at::Tensor anchor_sentence_tokens;              // [B, R] bool: tokens of top sentences
};

// `receivers`: the running receiver-head estimate to update with this batch and choose heads
// from (nullptr: use this batch's kurtosis alone). `sentence_ids` [B, R] as given to the reducer.
// `batch_sum`: pools batch-wide statistics over data-parallel ranks (nullptr: this batch).
CreditMap build_credit_map(const AttentionStatistics& stats, const CreditOptions& options,
                           ReceiverHeadEstimate* receivers = nullptr, const at::Tensor& sentence_ids = {},
                           const BatchSum* batch_sum = nullptr);

}  // namespace anchor::credit
