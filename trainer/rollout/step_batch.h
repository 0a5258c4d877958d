// StepBatch: a set of (prompt, response) token sequences as padded tensors — prompts
// left-padded so every prompt ends in the same column, responses right-padded. The RL step
// (sampled responses) and SFT (target responses) both build their batches here.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace anchor {

struct StepBatch {
  at::Tensor prompt_ids, prompt_mask;      // [N, P] int64 / bool
  at::Tensor response_ids, response_mask;  // [N, R] int64 / bool
};

// prompts[i] and responses[i] are the token ids of row i (responses may be empty).
StepBatch pad_sequences(const std::vector<const std::vector<int64_t>*>& prompts,
                        const std::vector<const std::vector<int64_t>*>& responses, int64_t pad_id);

// Rows `rows` of a step batch, with columns that are padding in every selected row trimmed.
StepBatch select_rows(const StepBatch& batch, const at::Tensor& rows);

}  // namespace anchor
