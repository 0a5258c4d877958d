// Thought anchors (docs/design.md §5.6): sentence-level attention from streamed block sums. Vertical
// scores say how much later sentences (at least P sentences on) attend to sentence j; receiver
// heads are those whose vertical scores are most peaked (highest excess kurtosis, averaged
// over traces and, in training, over steps); a sentence's receiver score is its mean vertical
// score over the receiver heads.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "credit/attention_statistics.h"

namespace anchor::credit {

struct VerticalScores {
  at::Tensor scores;   // [B, J, S] double (0 where undefined)
  at::Tensor defined;  // [B, S] bool: sentence j has tokens and some sentence i >= j + P has tokens
};
// Block mean of (i, j) = block sum / (|i| |j|); vertical_j = mean of block means over the
// sentences i >= j + P that have tokens.
VerticalScores vertical_scores(const AttentionStatistics& stats, int64_t proximity);

// Fisher (excess) kurtosis of each head's defined vertical scores, per trace: [B, J] double,
// with valid [B, J] false when a trace has fewer than 3 defined sentences or zero variance.
struct HeadKurtosis {
  at::Tensor kurtosis, valid;
};
HeadKurtosis vertical_score_kurtosis(const VerticalScores& vertical);

// Running mean of each head's kurtosis over every trace seen (across training steps); its two
// vectors are what a checkpoint stores.
struct ReceiverHeadEstimate {
  std::vector<double> kurtosis_sum;
  std::vector<int64_t> traces;
  // Adds this batch's kurtosis (summed over data-parallel ranks when batch_sum is given).
  void update(const HeadKurtosis& k, const std::function<at::Tensor(const at::Tensor&)>* batch_sum = nullptr);
  // The top-k heads by mean kurtosis (ties: lower index); heads never measured rank last.
  std::vector<int64_t> top_heads(int64_t k) const;
};

// Mean vertical score over `heads` [B, S] double; NaN where the sentence's score is undefined.
at::Tensor receiver_scores(const VerticalScores& vertical, const std::vector<int64_t>& heads);

// [B, R] bool: tokens of the top ceil(q * sentences) sentences of each response by receiver
// score, among sentences with a defined score.
at::Tensor top_sentence_tokens(const at::Tensor& scores, const at::Tensor& sentence_ids, double q);

}  // namespace anchor::credit
