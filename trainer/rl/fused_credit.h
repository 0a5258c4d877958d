// Credit maps inside the training forward (docs/design.md §2). On a step where
// credit_in_training_forward() holds (old_policy_stage.h), no separate observed pass runs: each micro-batch's
// training forward carries a StreamingAttentionReducer, and before that micro-batch's loss its
// statistics become a credit map (heads ranked over the micro-batch or per sequence), γ per
// token (sign mode applied) and the credit metrics. Thought anchors choose receiver heads from
// the running estimate through the previous step plus this micro-batch; the step's kurtosis
// joins the estimate once, pooled over ranks, after the update (finish()).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "credit/attention_statistics.h"
#include "credit/credit_map.h"
#include "trainer/config/train_config.h"
#include "trainer/rl/metric_sums.h"
#include "trainer/rl/old_policy_stage.h"
#include "trainer/rl/ppo_update.h"

namespace anchor {

struct TrainingForwardCreditInputs {
  const TrainConfig* config = nullptr;
  int64_t num_layers = 0, num_heads = 0;  // the policy's
  at::Tensor sentence_ids;         // [N, R] (sentence strategies), else undefined
  at::Tensor sequence_advantages;  // [N] (the sign mode reads them)
  at::Tensor global_rows;          // [N] each row's index in the step's global batch
  uint64_t seed = 0;               // the step's credit seed
};

class TrainingForwardCredit : public MicroBatchCredit {
 public:
  // `state`: the run's receiver-head estimate (read, then updated in finish()); `sums`: the
  // step's metric sums (credit/... per micro-batch).
  TrainingForwardCredit(TrainingForwardCreditInputs inputs, CreditState& state, MetricSums& sums);

  AttentionObserver* observe(const StepBatch& micro_batch, const at::Tensor& rows) override;
  at::Tensor gamma(const at::Tensor& rows, int64_t width) override;
  // After the update: the step's receiver kurtosis into the running estimate (batch_sum: over ranks).
  void finish(const credit::BatchSum* batch_sum);
  double seconds() const { return seconds_; }  // reducing chunks and building maps

 private:
  TrainingForwardCreditInputs in_;
  CreditState& state_;
  MetricSums& sums_;
  std::vector<int64_t> layers_;
  std::optional<credit::StreamingAttentionReducer> reducer_;
  at::Tensor micro_response_mask_;
  std::vector<at::Tensor> kurtosis_, kurtosis_valid_;  // per micro-batch [n, J]
  double seconds_ = 0;
};

}  // namespace anchor
