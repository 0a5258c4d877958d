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
  at::Tensor sentence_ids;  // [N, R] int64 sentence of each response token (-1 = none); sentence strategies
  // The credit map of this step is built in the training forward (fused_credit.h), not here.
  bool credit_in_training_forward = false;
  double forward_seconds = 0, credit_seconds = 0;
};

// Run state stage 3 reads and updates: the credit.layers auto choice and the running
// receiver-head estimate (both carried in checkpoints).
struct CreditState {
  std::vector<int64_t> auto_layers;         // empty until chosen
  credit::ReceiverHeadEstimate receivers;
};

// Whether the attention credit map is built inside the training forward (fused_credit.h)
// instead of in this stage's no-grad pass: a fully on-policy step (one epoch, one mini-batch,
// KL not in the reward), an attention strategy, heads ranked per micro-batch or per sequence
// (credit.head_ranking), and a known layer set (credit.layers auto: once its first credit step,
// which observes every layer in this stage's pass, has chosen).
bool credit_in_training_forward(const TrainConfig& config, const CreditState& state);

// The credit layers a step observes: credit.layers, except that `auto` means the layers its
// first credit step chose (while none are chosen, `auto` itself: every layer is observed).
credit::LayerSelection step_credit_layers(const credit::LayerSelection& configured, const CreditState& state);

// `batch_sum` pools batch-wide credit statistics over data-parallel ranks (nullptr: this batch).
OldPolicyOutputs score_with_old_policy(const Pretrained& policy, const LlamaModel* reference, const StepBatch& batch,
                                       const TrainConfig& config, CreditState& credit_state,
                                       const credit::BatchSum* batch_sum);

}  // namespace anchor
