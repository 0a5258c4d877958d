#include "trainer/rl/fused_credit.h"

#include <torch/torch.h>

#include <chrono>

#include "credit/token_weights.h"
#include "trainer/common/error.h"
#include "trainer/rl/credit_step.h"
#include "trainer/rl/micro_batch_reducer.h"

namespace anchor {

TrainingForwardCredit::TrainingForwardCredit(TrainingForwardCreditInputs inputs, CreditState& state, MetricSums& sums)
    : in_(std::move(inputs)), state_(state), sums_(sums) {
  AR_CHECK(in_.config && credit_in_training_forward(*in_.config, state_),
           "credit in the training forward: the config does not allow it (see credit_in_training_forward)");
  layers_ = credit::observed_layers(step_credit_layers(in_.config->credit.layers, state_), in_.num_layers);
}

AttentionObserver* TrainingForwardCredit::observe(const StepBatch& mb, const at::Tensor& rows) {
  micro_response_mask_ = mb.response_mask;
  return &start_micro_batch_reducer(reducer_, layers_, in_.num_heads, mb, rows, in_.sentence_ids, in_.config->credit);
}

at::Tensor TrainingForwardCredit::gamma(const at::Tensor& rows, int64_t width) {
  AR_CHECK(reducer_.has_value(), "credit in the training forward: gamma() before observe()");
  const auto t0 = std::chrono::steady_clock::now();
  const credit::CreditOptions& options = in_.config->credit;
  const credit::AttentionStatistics stats = reducer_->finish();
  seconds_ += reducer_->seconds();
  reducer_.reset();
  const at::Tensor sentences =
      in_.sentence_ids.defined() ? in_.sentence_ids.index_select(0, rows).slice(1, 0, width) : at::Tensor();
  // Receiver heads: the estimate through the previous step plus this micro-batch (a copy; the
  // run's estimate takes the whole step in finish()).
  credit::ReceiverHeadEstimate receivers = state_.receivers;
  const bool sentence_credit = credit::strategy_uses_sentences(options.strategy);
  const credit::CreditMap map =
      credit::build_credit_map(stats, options, sentence_credit ? &receivers : nullptr, sentences, nullptr);
  if (map.vertical.scores.defined()) {
    const credit::HeadKurtosis k = credit::vertical_score_kurtosis(map.vertical);
    kurtosis_.push_back(k.kurtosis);
    kurtosis_valid_.push_back(k.valid);
  }
  credit::WeightInputs w;
  w.response_lengths = stats.response_lengths;
  w.width = width;
  w.map = &map;
  w.seed = in_.seed;
  w.sample_ids = in_.global_rows.index_select(0, rows);
  const at::Tensor gamma = credit::apply_sign_mode(credit::token_weights(w, options),
                                                   in_.sequence_advantages.index_select(0, rows), options.sign);
  add_credit_sums(sums_, &map, gamma, micro_response_mask_);
  seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return gamma;
}

void TrainingForwardCredit::finish(const credit::BatchSum* batch_sum) {
  if (!credit::strategy_uses_sentences(in_.config->credit.strategy)) return;
  // Every rank takes part in the reduction, also one that trained on no rows this step.
  const int64_t J = static_cast<int64_t>(layers_.size()) * in_.num_heads;
  credit::HeadKurtosis step;
  step.kurtosis = kurtosis_.empty() ? torch::zeros({0, J}, torch::kDouble) : torch::cat(kurtosis_);
  step.valid = kurtosis_valid_.empty() ? torch::zeros({0, J}, torch::kBool) : torch::cat(kurtosis_valid_);
  state_.receivers.update(step, batch_sum);
  kurtosis_.clear();
  kurtosis_valid_.clear();
}

}  // namespace anchor
