// One aggregation for every loss (DESIGN 4, NeMo-RL style): per-token values [B, T] and a
// valid_mask become one scalar, normalised by a *global* denominator — counted over the whole
// mini-batch on all ranks — so that summing micro-batch losses gives the full-batch loss and
// the gradient does not depend on micro-batch size or world size.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

namespace anchor {

enum class LossAggregation {
  token_mean,               // sum(values) / global valid tokens
  seq_mean_token_mean,      // sum_i mean_t(values_i) / global sequences
  seq_mean_token_sum_norm,  // sum(values) / (global sequences * norm_length)  (Dr. GRPO)
};

LossAggregation parse_loss_aggregation(const std::string& name, const std::string& key);
const char* loss_aggregation_name(LossAggregation mode);

// What the global denominator counts for `mode`: valid tokens (token_mean) or sequences.
double aggregation_denominator(LossAggregation mode, const at::Tensor& valid_mask);

// values [B, T], valid_mask [B, T] bool -> scalar. norm_length is the Dr. GRPO constant
// (the generation budget, rollout.max_new_tokens); only seq_mean_token_sum_norm uses it.
at::Tensor aggregate_loss(const at::Tensor& values, const at::Tensor& valid_mask, LossAggregation mode,
                          double global_denominator, int64_t norm_length);

}  // namespace anchor
