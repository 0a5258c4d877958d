// One aggregation for every loss (docs/design.md §4, NeMo-RL style): per-token values [B, T] and a
// valid_mask become one scalar, normalised by a *global* denominator — counted over the whole
// mini-batch on all ranks — so that summing micro-batch losses gives the full-batch loss and
// the gradient does not depend on micro-batch size or world size.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

#include "trainer/algo/loss_aggregation_mode.h"

namespace anchor {


// What the global denominator counts for `mode`: valid tokens (token_mean) or sequences.
double aggregation_denominator(LossAggregation mode, const at::Tensor& valid_mask);

// values [B, T], valid_mask [B, T] bool -> scalar. norm_length is the Dr. GRPO constant
// (the generation budget, rollout.max_new_tokens); only seq_mean_token_sum_norm uses it.
at::Tensor aggregate_loss(const at::Tensor& values, const at::Tensor& valid_mask, LossAggregation mode,
                          double global_denominator, int64_t norm_length);

}  // namespace anchor
