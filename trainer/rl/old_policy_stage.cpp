#include "trainer/rl/old_policy_stage.h"

#include <torch/torch.h>

#include <chrono>

#include "credit/layer_choice.h"
#include "credit/token_weights.h"
#include "trainer/common/error.h"
#include "trainer/common/log.h"
#include "trainer/rl/credit_step.h"
#include "trainer/rl/policy_pass.h"

namespace anchor {

bool credit_in_training_forward(const TrainConfig& cfg, const CreditState& state) {
  return credit::strategy_uses_attention(cfg.credit.strategy) && cfg.algo.ppo_epochs == 1 &&
         cfg.algo.mini_batches == 1 && !(cfg.algo.kl_coef > 0 && cfg.algo.kl_in == KlPlacement::reward) &&
         cfg.credit.head_ranking != credit::HeadRanking::batch &&
         (cfg.credit.layers.mode != credit::LayerMode::automatic || !state.auto_layers.empty());
}

credit::LayerSelection step_credit_layers(const credit::LayerSelection& configured, const CreditState& state) {
  if (configured.mode == credit::LayerMode::automatic && !state.auto_layers.empty())
    return {credit::LayerMode::list, state.auto_layers};
  return configured;
}

OldPolicyOutputs score_with_old_policy(const Pretrained& policy, const LlamaModel* reference, const StepBatch& batch,
                                       const TrainConfig& cfg, CreditState& state, const credit::BatchSum* batch_sum) {
  using Clock = std::chrono::steady_clock;
  OldPolicyOutputs out;
  out.credit_in_training_forward = credit_in_training_forward(cfg, state);
  const bool attention_credit = credit::strategy_uses_attention(cfg.credit.strategy) && !out.credit_in_training_forward;
  const bool sentence_credit = credit::strategy_uses_sentences(cfg.credit.strategy);
  const bool on_policy = cfg.algo.ppo_epochs == 1 && cfg.algo.mini_batches == 1;
  const int64_t R = batch.response_ids.size(1);
  const auto t0 = Clock::now();
  at::Tensor sentence_ids;
  if (sentence_credit) {
    std::vector<std::vector<int64_t>> responses;
    const at::Tensor lengths = batch.response_mask.sum(1);
    for (int64_t i = 0; i < batch.response_ids.size(0); ++i) {
      const at::Tensor row = batch.response_ids[i].slice(0, 0, lengths[i].item<int64_t>()).contiguous();
      responses.emplace_back(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel());
    }
    std::vector<const std::vector<int64_t>*> rows;
    for (const auto& r : responses) rows.push_back(&r);
    sentence_ids = response_sentence_ids(policy.tokenizer, rows, R, cfg.credit.min_sentence_chars);
  }
  out.credit_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
  // The pass is needed unless fully on-policy — and even then when the credit map needs it
  // (entropies, or attention statistics whose batch-wide head ranking pools every micro-batch
  // of the step; other rankings are read from the training forward) or a KL penalty in the
  // reward needs the old log-probs first.
  const bool entropies = credit::strategy_uses_entropy(cfg.credit.strategy);
  const bool needs_pass = !on_policy || attention_credit || entropies ||
                          (cfg.algo.kl_coef > 0 && cfg.algo.kl_in == KlPlacement::reward);
  credit::CreditOptions step_credit = cfg.credit;
  step_credit.layers = step_credit_layers(cfg.credit.layers, state);
  const int64_t micro = cfg.algo.micro_batch_size;
  PolicyPass old = needs_pass ? policy_pass(policy.model, batch, cfg.rollout.temperature, micro,
                                            entropies,
                                            attention_credit ? &step_credit : nullptr, sentence_ids,
                                            cfg.algo.shared_prompts)
                              : PolicyPass{};
  if (old.attention && cfg.credit.layers.mode == credit::LayerMode::automatic && state.auto_layers.empty()) {
    // credit.layers auto (docs/design.md §5.7): every layer observed on the first credit step, the
    // choice kept for the run.
    const auto profiles = credit::layer_profiles(*old.attention, cfg.credit, batch_sum);
    state.auto_layers =
        credit::choose_layers(profiles, policy.model.config().num_hidden_layers, cfg.credit.auto_layer_count);
    std::string text;
    for (const auto& p : profiles)
      text += str_cat(" ", p.layer, ":", p.local_heads, "L/", p.global_heads, "G/", p.sink_heads, "S");
    log::info(str_cat("credit.layers auto: observing layers ", nlohmann::json(state.auto_layers).dump(),
                      " (per layer: clearly local / clearly global / sink heads:", text, ")"));
    out.chosen_layers = state.auto_layers;
    old.attention = credit::select_layers(*old.attention, state.auto_layers);
  }
  out.logprobs = old.logprobs;
  out.sentence_ids = sentence_ids;
  out.entropy = old.entropy;
  out.credit_seconds += old.credit_seconds;
  if (reference != nullptr) {
    // The reference never has adapters: with LoRA it is the policy's base (PEFT's
    // disable_adapter()); for a separate reference model this changes nothing.
    const AdaptersDisabled base(*reference);
    out.ref_logprobs =
        policy_pass(*reference, batch, cfg.rollout.temperature, micro, false, nullptr, {}, cfg.algo.shared_prompts)
            .logprobs;
  }
  out.forward_seconds = std::chrono::duration<double>(Clock::now() - t0).count() - out.credit_seconds;
  const auto t1 = Clock::now();
  if (old.attention)
    out.credit_map = credit::build_credit_map(*old.attention, cfg.credit, sentence_credit ? &state.receivers : nullptr,
                                              sentence_ids, batch_sum);
  out.credit_seconds += std::chrono::duration<double>(Clock::now() - t1).count();
  return out;
}

}  // namespace anchor
