// Stage 3 of the RL step: the policy before the update (and the frozen reference) read the
// sampled responses — per-token old log-probs, entropies when a credit strategy needs them,
// and, fused into the same no-grad forward, the attention statistics the credit map is built
// from (docs/design.md §2: one pass; docs/design.md §5: the map).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "credit/credit_map.h"
#include "trainer/config/train_config.h"
#include "trainer/model/pretrained.h"
#include "trainer/rollout/step_batch.h"

namespace anchor {

struct OldPolicyOutputs {
  // [N, R] float, 0 on padding. Undefined when the pass is skipped: fully on-policy (one epoch,
  // one mini-batch) the ratio is 1 and the training forward's own log-probs stand in (as TRL).
  at::Tensor logprobs;
  at::Tensor ref_logprobs;  // [N, R] frozen reference; undefined when algo.kl_coef is 0
  at::Tensor entropy;       // [N, R] policy entropy; only for credit.strategy entropy
  std::optional<credit::CreditMap> credit_map;  // attention strategies
  std::vector<int64_t> chosen_layers;  // credit.layers auto: the layers chosen at this step (first credit step)
  double forward_seconds = 0, credit_seconds = 0;
};

// Run state stage 3 reads and updates: the credit.layers auto choice and the running
// receiver-head estimate (both carried in checkpoints).
struct CreditState {
  std::vector<int64_t> auto_layers;         // empty until chosen
  credit::ReceiverHeadEstimate receivers;
};

// `batch_sum` pools batch-wide credit statistics over data-parallel ranks (nullptr: this batch).
OldPolicyOutputs score_with_old_policy(const Pretrained& policy, const LlamaModel* reference, const StepBatch& batch,
                                       const TrainConfig& config, CreditState& credit_state,
                                       const credit::BatchSum* batch_sum);

}  // namespace anchor
