#include "trainer/rl/advantage_stage.h"

#include <torch/torch.h>

#include "credit/gtpo_advantages.h"
#include "credit/token_weights.h"
#include "trainer/algo/advantage.h"
#include "trainer/algo/kl_penalty.h"
#include "trainer/common/error.h"
#include "trainer/rl/step_seed.h"

namespace anchor {

StepAdvantages compute_advantages(const ScoredRollouts& rollouts, const OldPolicyOutputs& old, const TrainConfig& cfg,
                                  const at::Tensor& global_rows, int64_t step, const credit::BatchGather* gather) {
  StepAdvantages out;
  const at::Tensor valid = rollouts.batch.response_mask;
  at::Tensor shaped_rewards = rollouts.rewards;
  if (old.ref_logprobs.defined()) {
    const KlEstimator& kl = kl_estimators().get(cfg.algo.kl_estimator);
    // A fully on-policy step with KL in the loss skips the old-policy pass: the sampler's
    // log-probs are the same policy's (KL in the reward always has the pass).
    const at::Tensor& current = old.logprobs.defined() ? old.logprobs : rollouts.sampling_logprobs;
    out.kl_tokens = kl(current, old.ref_logprobs).masked_fill(valid.logical_not(), 0.0);
    if (cfg.algo.kl_in == KlPlacement::reward) shaped_rewards = rollouts.rewards - cfg.algo.kl_coef * out.kl_tokens.sum(1);
  }
  const AdvantageEstimator& estimator = advantage_estimators().get(cfg.algo.advantage);
  out.sequence = estimator(shaped_rewards, AdvantageOptions{cfg.rollout.samples_per_prompt, cfg.algo.normalize_std, 1e-6});
  out.credit_seed = derive_seed(cfg.train.seed, step, 2000);
  if (old.credit_in_training_forward) {
    out.gamma = torch::ones(valid.sizes(), torch::kFloat);
    out.tokens = out.sequence.unsqueeze(1) * valid.to(torch::kFloat);
    return out;
  }
  if (credit::strategy_sets_token_advantages(cfg.credit.strategy)) {
    // gtpo: token advantages of its own from correctness and entropy, in place of sequence x γ.
    AR_CHECK(old.entropy.defined(), "credit.strategy gtpo needs the policy's token entropies");
    out.gamma = torch::ones(valid.sizes(), torch::kFloat);
    out.tokens = credit::gtpo_token_advantages(
        rollouts.correct, old.entropy, valid.sum(1),
        credit::GtpoOptions{cfg.rollout.samples_per_prompt, cfg.credit.gtpo_alpha_reward, cfg.credit.gtpo_alpha_entropy});
    return out;
  }
  credit::WeightInputs weight_inputs;
  weight_inputs.response_lengths = valid.sum(1);
  weight_inputs.width = valid.size(1);
  weight_inputs.map = old.credit_map ? &*old.credit_map : nullptr;
  weight_inputs.entropy = old.entropy;
  weight_inputs.seed = out.credit_seed;
  weight_inputs.sample_ids = global_rows;
  weight_inputs.batch_gather = gather;
  out.gamma = credit::apply_sign_mode(credit::token_weights(weight_inputs, cfg.credit), out.sequence, cfg.credit.sign);
  out.tokens = out.sequence.unsqueeze(1) * valid.to(torch::kFloat) * out.gamma;
  return out;
}

}  // namespace anchor
