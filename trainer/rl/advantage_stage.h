// Stage 4 of the RL step: group-normalised sequence advantages (after an optional KL penalty
// in the reward), broadcast to tokens, each token's share scaled by the credit map's γ_t
// (docs/design.md §4-5). Whole groups are on one rank, so nothing here crosses ranks.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "credit/token_weights.h"
#include "trainer/config/train_config.h"
#include "trainer/rl/old_policy_stage.h"
#include "trainer/rl/rollout_stage.h"

namespace anchor {

struct StepAdvantages {
  at::Tensor sequence;   // [N] float: the estimator's advantage of each response
  at::Tensor gamma;      // [N, R] float: credit weights (sign mode applied)
  at::Tensor tokens;     // [N, R] float: sequence advantage x gamma, 0 on padding
  at::Tensor kl_tokens;  // [N, R] per-token KL to the reference, 0 on padding; undefined without KL
  uint64_t credit_seed = 0;  // the step's seed of token-weight draws (random baseline)
};

// `global_rows` [N]: each row's index in the step's global batch (the random baseline's stream);
// `gather` concatenates 1-D tensors over ranks (forking_tokens' batch-wide threshold; null in
// one process). credit.strategy gtpo replaces sequence advantage x γ by its own token advantages.
// When the credit map is built in the training forward (old.credit_in_training_forward), γ is
// 1 here and the update multiplies each micro-batch's γ in (fused_credit.h).
StepAdvantages compute_advantages(const ScoredRollouts& rollouts, const OldPolicyOutputs& old,
                                  const TrainConfig& config, const at::Tensor& global_rows, int64_t step,
                                  const credit::BatchGather* gather = nullptr);

}  // namespace anchor
