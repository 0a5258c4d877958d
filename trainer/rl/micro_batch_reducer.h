// The credit reducer of one micro-batch, built the same way by both places that observe a
// micro-batch's attention: the separate observed pass (policy_pass.cpp) and the training
// forward (fused_credit.cpp).
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <vector>

#include "credit/attention_statistics.h"
#include "credit/credit_options.h"
#include "trainer/rollout/step_batch.h"

namespace anchor {

// mb: the micro-batch; rows [n] int64: its rows in the step batch, which pick their sentence ids
// (sentence_ids [N, R] int64 for the whole step, undefined when the strategy reads none).
inline credit::StreamingAttentionReducer& start_micro_batch_reducer(
    std::optional<credit::StreamingAttentionReducer>& reducer, const std::vector<int64_t>& layers, int64_t heads,
    const StepBatch& mb, const at::Tensor& rows, const at::Tensor& sentence_ids, const credit::CreditOptions& credit) {
  const int64_t width = mb.response_ids.size(1);
  return reducer.emplace(layers, heads, mb.prompt_ids.size(1), mb.response_mask.sum(1), width,
                         credit::reducer_options(credit),
                         sentence_ids.defined() ? sentence_ids.index_select(0, rows).slice(1, 0, width) : at::Tensor(),
                         mb.prompt_mask.sum(1));
}

}  // namespace anchor
