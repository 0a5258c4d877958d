// validate_train_config: every static check of a run config, one function per section. Each
// error names the key as section.key and what is allowed; config loading adds the file and the
// line the key came from.
#include <cstdint>
#include <initializer_list>
#include <string>

#include "trainer/common/error.h"
#include "trainer/config/train_config.h"
#include "trainer/model/lora_config.h"

namespace anchor {
namespace {

void check_one_of(const std::string& key, const std::string& value, std::initializer_list<const char*> allowed) {
  std::string list;
  for (const char* a : allowed) {
    if (value == a) return;
    list += (list.empty() ? "" : ", ") + std::string(a);
  }
  AR_FAIL(key, ": '", value, "' is not allowed (expected one of: ", list, ")");
}

void validate_model(const TrainConfig& c) {
  AR_CHECK(!c.model.path.empty(), "model.path: required (a Hugging Face model directory)");
  check_one_of("model.dtype", c.model.dtype, {"auto", "float32", "bfloat16"});
  AR_CHECK(c.model.threads >= 0, "model.threads: must be >= 0, got ", c.model.threads);
  const LoraSection& l = c.model.lora;
  if (!l.enabled) return;
  AR_CHECK(l.rank >= 1, "model.lora.rank: must be >= 1, got ", l.rank);
  AR_CHECK(l.alpha > 0, "model.lora.alpha: must be > 0, got ", l.alpha);
  AR_CHECK(l.dropout >= 0 && l.dropout < 1, "model.lora.dropout: must be in [0, 1), got ", l.dropout);
  parse_lora_targets(l.target_modules, "model.lora.target_modules");
  check_one_of("model.lora.init", l.init, {"kaiming", "gaussian"});
  // The recomputation in backward would draw other dropout masks than the forward did.
  AR_CHECK(l.dropout == 0 || !c.model.activation_checkpointing,
           "model.lora.dropout: must be 0 with model.activation_checkpointing (the recomputed layer would draw "
           "different dropout masks), got ", l.dropout);
}

void validate_data(const TrainConfig& c) {
  AR_CHECK(!c.data.train.empty(), "data.train: required (a JSONL file of prompts)");
  AR_CHECK(c.data.eval_limit >= 0, "data.eval_limit: must be >= 0");
  AR_CHECK(c.data.max_prompt_tokens >= 0, "data.max_prompt_tokens: must be >= 0 (0 = the model's positions minus "
           "rollout.max_new_tokens), got ", c.data.max_prompt_tokens);
}

void validate_rollout(const TrainConfig& c) {
  AR_CHECK(c.rollout.prompts_per_step >= 1, "rollout.prompts_per_step: must be >= 1, got ", c.rollout.prompts_per_step);
  AR_CHECK(c.rollout.samples_per_prompt >= 1, "rollout.samples_per_prompt: must be >= 1");
  AR_CHECK(c.rollout.max_new_tokens >= 1, "rollout.max_new_tokens: must be >= 1");
  AR_CHECK(c.rollout.temperature > 0, "rollout.temperature: must be > 0 for RL sampling, got ", c.rollout.temperature);
  AR_CHECK(c.rollout.top_p > 0 && c.rollout.top_p <= 1, "rollout.top_p: must be in (0, 1], got ", c.rollout.top_p);
  AR_CHECK(c.rollout.top_k >= 0, "rollout.top_k: must be >= 0");
}

void validate_reward(const TrainConfig& c, ConfigUse use) {
  if (use == ConfigUse::rl)
    AR_CHECK(!c.reward.components.empty(), "reward.components: at least one component is required");
}

void validate_algo(const TrainConfig& c) {
  check_one_of("algo.advantage", c.algo.advantage, {"grpo", "rloo", "reinforce_pp", "reinforce"});
  if (c.algo.advantage == "grpo" || c.algo.advantage == "rloo")
    AR_CHECK(c.rollout.samples_per_prompt >= 2, "rollout.samples_per_prompt: ", c.algo.advantage,
             " needs at least 2 samples per prompt, got ", c.rollout.samples_per_prompt);
  check_one_of("algo.policy_loss", c.algo.policy_loss, {"ppo_clip"});
  AR_CHECK(c.algo.clip_low > 0 && c.algo.clip_low < 1, "algo.clip_low: must be in (0, 1), got ", c.algo.clip_low);
  AR_CHECK(c.algo.clip_high > 0, "algo.clip_high: must be > 0, got ", c.algo.clip_high);
  AR_CHECK(c.algo.dual_clip == 0 || c.algo.dual_clip > 1, "algo.dual_clip: 0 (off) or > 1, got ", c.algo.dual_clip);
  AR_CHECK(c.algo.kl_coef >= 0, "algo.kl_coef: must be >= 0");
  check_one_of("algo.kl_estimator", c.algo.kl_estimator, {"k1", "k2", "k3"});
  AR_CHECK(c.algo.ppo_epochs >= 1, "algo.ppo_epochs: must be >= 1");
  AR_CHECK(c.algo.mini_batches >= 1, "algo.mini_batches: must be >= 1");
  AR_CHECK(c.algo.micro_batch_size >= 1, "algo.micro_batch_size: must be >= 1");
  AR_CHECK(c.algo.max_sampling_rounds >= 1, "algo.max_sampling_rounds: must be >= 1");
  const int64_t sequences = c.rollout.prompts_per_step * c.rollout.samples_per_prompt;
  AR_CHECK(sequences % c.algo.mini_batches == 0, "algo.mini_batches: ", c.algo.mini_batches,
           " must divide the sequences per step (rollout.prompts_per_step x rollout.samples_per_prompt = ",
           sequences, ")");
}

void validate_optim(const TrainConfig& c) {
  AR_CHECK(c.optim.lr > 0, "optim.lr: must be > 0, got ", c.optim.lr);
  AR_CHECK(c.optim.beta1 >= 0 && c.optim.beta1 < 1 && c.optim.beta2 >= 0 && c.optim.beta2 < 1,
           "optim.beta1 / optim.beta2: must be in [0, 1)");
  AR_CHECK(c.optim.eps > 0, "optim.eps: must be > 0");
  AR_CHECK(c.optim.weight_decay >= 0, "optim.weight_decay: must be >= 0");
  AR_CHECK(c.optim.grad_clip >= 0, "optim.grad_clip: must be >= 0 (0 = off)");
  AR_CHECK(c.distributed.zero_stage >= 0 && c.distributed.zero_stage <= 2, "distributed.zero_stage: expected 0, 1 or 2, got ",
           c.distributed.zero_stage);
  AR_CHECK(c.optim.warmup_steps >= 0, "optim.warmup_steps: must be >= 0");
  AR_CHECK(c.optim.min_lr_ratio >= 0 && c.optim.min_lr_ratio <= 1, "optim.min_lr_ratio: must be in [0, 1]");
}

void validate_train(const TrainConfig& c) {
  AR_CHECK(c.train.steps >= 1, "train.steps: must be >= 1");
  AR_CHECK(c.train.eval_every >= 0, "train.eval_every: must be >= 0");
  AR_CHECK(c.train.eval_samples >= 1, "train.eval_samples: must be >= 1");
  AR_CHECK(c.train.eval_temperature >= 0, "train.eval_temperature: must be >= 0 (0 = greedy)");
  AR_CHECK(c.train.max_consecutive_skips >= 1, "train.max_consecutive_skips: must be >= 1, got ",
           c.train.max_consecutive_skips);
}

void validate_run_files(const TrainConfig& c) {  // checkpoint, logging, distributed
  AR_CHECK(c.checkpoint.every >= 0, "checkpoint.every: must be >= 0");
  AR_CHECK(c.checkpoint.keep_last >= 1, "checkpoint.keep_last: must be >= 1");
  AR_CHECK(!c.logging.run_dir.empty(), "logging.run_dir: required");
  AR_CHECK(c.distributed.timeout_seconds > 0, "distributed.timeout_seconds: must be positive, got ",
           c.distributed.timeout_seconds);
}

void validate_sft(const TrainConfig& c) {
  AR_CHECK(c.sft.batch_size >= 1, "sft.batch_size: must be >= 1");
  AR_CHECK(!c.sft.response_key.empty(), "sft.response_key: required");
  AR_CHECK(!c.sft.text_key.empty(), "sft.text_key: required");
  const ConditionalSection& cond = c.sft.conditional;
  AR_CHECK(!cond.scorer.empty(), "sft.conditional.scorer: required (a reward component name, or field)");
  if (cond.scorer != "field")
    AR_CHECK(rewards::reward_components().contains(cond.scorer), "sft.conditional.scorer: '", cond.scorer,
             "' is not a reward component (expected field or one of: ", rewards::reward_components().joined_names(),
             ")");
  AR_CHECK(cond.scorer != "field" || !cond.score_key.empty(), "sft.conditional.score_key: required with scorer field");
  AR_CHECK(cond.threshold_percentile == -1 || (cond.threshold_percentile >= 0 && cond.threshold_percentile <= 100),
           "sft.conditional.threshold_percentile: must be in [0, 100], or -1 to use sft.conditional.threshold, got ",
           cond.threshold_percentile);
  AR_CHECK(cond.unconditioned_fraction >= 0 && cond.unconditioned_fraction <= 1,
           "sft.conditional.unconditioned_fraction: must be in [0, 1], got ", cond.unconditioned_fraction);
  AR_CHECK(cond.min_sentence_chars >= 0, "sft.conditional.min_sentence_chars: must be >= 0");
  AR_CHECK(cond.embedding_noise_std >= 0, "sft.conditional.embedding_noise_std: must be >= 0");
  const ContextIndicatorSection& ind = c.sft.context_indicator;
  AR_CHECK(ind.layer >= -1, "sft.context_indicator.layer: must be a layer index, or -1 for the middle layer, got ",
           ind.layer);
  AR_CHECK(ind.beta >= 0 && ind.beta <= 1, "sft.context_indicator.beta: must be in [0, 1] (an attention mass), got ",
           ind.beta);
  AR_CHECK(ind.embedding_noise_std >= 0, "sft.context_indicator.embedding_noise_std: must be >= 0");
}

// credit.head_ranking micro_batch ranks heads within the training forward's micro-batches:
// only a fully on-policy step builds its credit map there (credit_in_training_forward).
void validate_credit_in_training(const TrainConfig& c) {
  if (c.credit.head_ranking != credit::HeadRanking::micro_batch || !credit::strategy_uses_attention(c.credit.strategy))
    return;
  const std::string why = "credit.head_ranking: micro_batch builds the credit map inside the training forward, ";
  AR_CHECK(c.algo.ppo_epochs == 1 && c.algo.mini_batches == 1, why,
           "which needs a fully on-policy step (algo.ppo_epochs 1 and algo.mini_batches 1), got ppo_epochs ",
           c.algo.ppo_epochs, " and mini_batches ", c.algo.mini_batches, " (use batch or sequence)");
  AR_CHECK(!(c.algo.kl_coef > 0 && c.algo.kl_in == KlPlacement::reward), why,
           "so the KL penalty cannot be in the reward (algo.kl_in: loss, or algo.kl_coef 0)");
}

// credit.strategy gtpo shapes token rewards from each response's correctness: a KL penalty
// folded into the reward would be silently dropped.
void validate_token_advantages(const TrainConfig& c) {
  if (!credit::strategy_sets_token_advantages(c.credit.strategy)) return;
  AR_CHECK(!(c.algo.kl_coef > 0 && c.algo.kl_in == KlPlacement::reward),
           "credit.strategy: gtpo sets token advantages from correctness and entropy, so the KL penalty cannot be in "
           "the reward (algo.kl_in: loss, or algo.kl_coef 0)");
}

}  // namespace

void validate_train_config(const TrainConfig& c, ConfigUse use) {
  if (use == ConfigUse::credit) {
    credit::validate_credit_options(c.credit);
    return;
  }
  validate_model(c);
  validate_data(c);
  validate_rollout(c);
  validate_reward(c, use);
  validate_algo(c);
  credit::validate_credit_options(c.credit);
  if (use == ConfigUse::rl) {
    validate_credit_in_training(c);
    validate_token_advantages(c);
  }
  validate_optim(c);
  validate_train(c);
  validate_run_files(c);
  validate_sft(c);
}

}  // namespace anchor
