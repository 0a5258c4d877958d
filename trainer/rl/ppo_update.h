// The policy-gradient update of one mini-batch: forward with gradients, PPO loss, optional KL
// and entropy terms, aggregated with the mini-batch's global denominator, backward —
// micro-batch by micro-batch. Gradients accumulate in the parameters' .grad; the caller
// owns zero_grad, clipping and the optimizer step. Because every micro-batch is normalised
// by the same global denominator, any micro-batch size gives the full-batch gradient.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>

#include "trainer/algo/kl_penalty.h"
#include "trainer/algo/loss_aggregation.h"
#include "trainer/algo/policy_loss.h"
#include "trainer/model/llama_model.h"
#include "trainer/rollout/step_batch.h"

namespace anchor {

// Credit built inside the training forward (fused_credit.h): for each micro-batch the update
// attaches the observer it is given to the forward, then multiplies the rows' token advantages
// by the γ it returns, before the loss.
class MicroBatchCredit {
 public:
  virtual ~MicroBatchCredit() = default;
  // rows: indices into the update's batch; micro_batch: those rows, columns trimmed.
  virtual AttentionObserver* observe(const StepBatch& micro_batch, const at::Tensor& rows) = 0;
  // After the forward: γ [rows, width] float (detached).
  virtual at::Tensor gamma(const at::Tensor& rows, int64_t width) = 0;
};

struct UpdateInputs {
  StepBatch batch;
  // [N, R] from the no-grad pass (sampling policy); undefined = fully on-policy (one epoch, one
  // mini-batch): the ratio's denominator is the training forward's own log-prob, detached, so
  // the ratio is 1 and the no-grad pass is skipped (as TRL does).
  at::Tensor old_logprobs;
  at::Tensor ref_logprobs;      // [N, R] frozen reference, undefined when KL is off
  at::Tensor token_advantages;  // [N, R] credit-shaped advantages, 0 on padding
  MicroBatchCredit* credit = nullptr;  // if set: γ per micro-batch from the training forward
};

struct UpdateOptions {
  const PolicyLoss* policy_loss = nullptr;
  PolicyLossOptions loss;
  LossAggregation aggregation = LossAggregation::token_mean;
  int64_t norm_length = 1;          // Dr. GRPO constant (rollout.max_new_tokens)
  double temperature = 1.0;
  const KlEstimator* kl = nullptr;  // KL in the loss when set (and ref_logprobs defined)
  double kl_coef = 0.0;
  double entropy_coef = 0.0;
  int64_t micro_batch_size = 32;
  // Encode each group's prompt once per micro-batch (response_statistics.h; exact).
  bool share_prompts = true;
  // The aggregation denominator of the whole mini-batch — over every rank's rows when data
  // parallel, so that the summed gradients equal one process's. 0: computed from `rows`.
  double denominator = 0;
  // Called after each micro-batch's backward (ZeRO stage 2 moves the gradients into its slice).
  std::function<void()> after_backward;
};

struct UpdateStats {
  double loss = 0;            // sum of micro-batch losses = the mini-batch loss
  double clipped_tokens = 0;
  double entropy_sum = 0;
  int64_t tokens = 0;
  double forward_seconds = 0, backward_seconds = 0;
  int64_t positions = 0;      // token positions the training forward ran over (padding included)
  at::Tensor logprobs;  // [N, R] CPU: the training forward's log-probs (detached), filled for `rows`
};

// Accumulates d(loss)/d(params) of the mini-batch `rows` into .grad, in micro_batch_count
// micro-batches (one backward and one after_backward call each).
int64_t micro_batch_count(int64_t rows, int64_t micro_batch_size);
UpdateStats accumulate_policy_gradients(const LlamaModel& model, const UpdateInputs& inputs, const at::Tensor& rows,
                                        const UpdateOptions& options);

}  // namespace anchor
