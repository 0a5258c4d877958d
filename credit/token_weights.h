// Token weights γ_t (docs/design.md §5.5): a registry of strategies, each a small pure function from a
// credit map (or the policy's entropies, or a seed) to γ [B, R]. γ is 1 outside the selected
// tokens and at padding; the trainer multiplies the token advantages by it (detached).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>

#include "credit/credit_map.h"
#include "credit/credit_options.h"
#include "trainer/common/registry.h"

namespace anchor::credit {

// 1-D tensors concatenated over the ranks of a data-parallel step (rank order); the identity in
// one process.
using BatchGather = std::function<at::Tensor(const at::Tensor&)>;

struct WeightInputs {
  at::Tensor response_lengths;       // [B]
  int64_t width = 0;                 // R
  const CreditMap* map = nullptr;    // attention strategies
  at::Tensor entropy;                // [B, R] policy entropy (entropy, forking_tokens)
  uint64_t seed = 0;                 // random baseline
  // [B] int64 global sample index of each row (random baseline: one stream per sample, so the
  // choice does not depend on how the batch is split across ranks); undefined = 0..B-1.
  at::Tensor sample_ids;
  // forking_tokens ranks entropies over the step's whole batch: every rank's rows (null = this
  // process holds the whole batch).
  const BatchGather* batch_gather = nullptr;
};

using TokenWeightFn = std::function<at::Tensor(const WeightInputs&, const CreditOptions&)>;
Registry<TokenWeightFn>& token_weight_strategies();

// γ [B, R] float for options.strategy.
at::Tensor token_weights(const WeightInputs& inputs, const CreditOptions& options);

// Sign mode: both keeps γ; positive_only sets γ = 1 on responses whose advantage is <= 0.
at::Tensor apply_sign_mode(const at::Tensor& gamma, const at::Tensor& advantages, AdvantageSign sign);

}  // namespace anchor::credit
