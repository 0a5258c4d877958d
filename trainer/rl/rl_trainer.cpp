#include "trainer/rl/rl_trainer.h"

#include <torch/torch.h>

#include <chrono>

#include "credit/credit_map.h"
#include "credit/layer_choice.h"
#include "credit/token_weights.h"
#include "data/prompt_dataset.h"
#include "rewards/reward_function.h"
#include "trainer/algo/advantage.h"
#include "trainer/algo/kl_penalty.h"
#include "trainer/algo/loss_aggregation.h"
#include "trainer/algo/policy_loss.h"
#include "trainer/checkpoint/checkpoint.h"
#include "trainer/checkpoint/run_setup.h"
#include "trainer/checkpoint/training_checkpoint.h"
#include "trainer/common/device.h"
#include "trainer/common/error.h"
#include "trainer/common/log.h"
#include "trainer/config/train_config.h"
#include "trainer/optim/lr_schedule.h"
#include "trainer/rl/evaluation.h"
#include "trainer/rl/credit_step.h"
#include "trainer/rl/policy_pass.h"
#include "trainer/rl/ppo_update.h"
#include "trainer/rollout/sampler.h"

namespace anchor {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Seeds derived from (run seed, step, stream) only: resuming needs no generator state.
uint64_t derive_seed(uint64_t seed, int64_t step, uint64_t stream) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull ^ (static_cast<uint64_t>(step) + 1) * 0xBF58476D1CE4E5B9ull ^
               (stream + 1) * 0x94D049BB133111EBull;
  x ^= x >> 31;
  return x * 0xD6E8FEB86659FD93ull;
}

// One sampled completion with everything the update needs.
struct Sample {
  std::vector<int64_t> prompt;    // token ids (BOS included)
  std::vector<int64_t> response;  // token ids (stop token included)
  std::vector<float> sampling_logprobs;
  size_t example = 0;
  double reward = 0;
  bool correct = false;
  bool truncated = false;
  std::vector<double> components;
};

std::string format_duration(double seconds) {
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  return s >= 3600 ? str_cat(s / 3600, "h", (s % 3600) / 60, "m") : str_cat(s / 60, "m", s % 60, "s");
}

}  // namespace

int run_rl_training(const TrainRunOptions& opt) {
  // ---- configuration, run directory, starting point ----------------------------------------
  RunStart start = start_run(opt, ConfigUse::rl, "train");
  const TrainConfig& cfg = start.config;
  TrainerState& state = start.state;
  RunDirectory& run = *start.run;

  // ---- components, each from its config section ---------------------------------------------
  const at::TensorOptions options = resolve_device(cfg.model.device, cfg.model.dtype, cfg.model.threads, "model");
  const at::TensorOptions master = options.dtype(torch::kFloat);  // fp32 master weights
  Pretrained policy = load_pretrained(start.weights_from, master);
  policy.model.set_requires_grad(true);
  // Mixed precision (bf16 on CUDA): every forward — rollout, old log-probs, update — computes in
  // the compute dtype under autocast; AdamW updates the fp32 weights.
  policy.model.set_compute_dtype(options.dtype().toScalarType());
  policy.model.set_activation_checkpointing(cfg.model.activation_checkpointing);
  // The KL reference is the run's starting point (model.path or --init-from), remembered in
  // the checkpoints so that a resumed run keeps the same reference.
  if (!state.extra.contains("reference_from")) state.extra["reference_from"] = start.weights_from;
  std::optional<LlamaModel> reference;
  if (cfg.algo.kl_coef > 0) {
    reference.emplace(load_model(state.extra["reference_from"].get<std::string>(), master));
    reference->set_requires_grad(false);
    reference->set_compute_dtype(options.dtype().toScalarType());
  }

  const data::PromptDataset train_set = data::PromptDataset::load_jsonl(cfg.data.train, cfg.data.prompt_key);
  std::optional<data::PromptDataset> eval_set;
  if (!cfg.data.eval.empty()) eval_set = data::PromptDataset::load_jsonl(cfg.data.eval, cfg.data.prompt_key);
  const data::ChatTemplate prompt_template = chat_template_for(policy, cfg.data.template_, "data.template");
  train_set.check_renders_with(prompt_template, "data.template");
  if (eval_set) eval_set->check_renders_with(prompt_template, "data.template");
  log::info(str_cat("prompts: ", prompt_template.describe()));
  const rewards::CompositeReward reward(cfg.reward.components);
  const AdvantageEstimator& estimator = advantage_estimators().get(cfg.algo.advantage);
  const PolicyLoss& policy_loss = policy_losses().get(cfg.algo.policy_loss);
  const KlEstimator& kl_estimator = kl_estimators().get(cfg.algo.kl_estimator);
  const LossAggregation aggregation = parse_loss_aggregation(cfg.algo.loss_agg, "algo.loss_agg");
  const PolicyLossOptions loss_options{cfg.algo.clip_low, cfg.algo.clip_high, cfg.algo.dual_clip};

  data::DataCursor cursor(train_set.size(), cfg.train.seed, cfg.data.shuffle);
  torch::optim::AdamW optimizer = make_adamw(policy.model, cfg.optim);
  if (!start.checkpoint_dir.empty()) {
    cursor.restore(state.data_epoch, state.data_position);
    restore_training_checkpoint(start.checkpoint_dir, policy, optimizer);
    log::info(str_cat("resumed from ", start.checkpoint_dir, " at step ", state.step));
  }
  run.open_metrics(state.step);

  // Credit (DESIGN 5): which strategy, and the running receiver-head estimate of thought
  // anchors, carried across steps in the checkpoints.
  const bool attention_credit = credit::strategy_uses_attention(cfg.credit.strategy);
  const bool on_policy = cfg.algo.ppo_epochs == 1 && cfg.algo.mini_batches == 1;
  const bool sentence_credit = credit::strategy_uses_sentences(cfg.credit.strategy);
  if (attention_credit) credit::observed_layers(cfg.credit.layers, policy.model.config().num_hidden_layers);  // checks
  // credit.layers: auto observes every layer on the first credit step, chooses there (5.7) and
  // keeps the choice, which the checkpoints carry so a resumed run observes the same layers.
  std::vector<int64_t> auto_layers;
  if (state.extra.contains("credit_layers")) auto_layers = state.extra["credit_layers"].get<std::vector<int64_t>>();
  credit::ReceiverHeadEstimate receivers;
  if (state.extra.contains("credit_receivers")) {
    receivers.kurtosis_sum = state.extra["credit_receivers"]["kurtosis_sum"].get<std::vector<double>>();
    receivers.traces = state.extra["credit_receivers"]["traces"].get<std::vector<int64_t>>();
  }

  const int64_t G = cfg.rollout.samples_per_prompt;
  const int64_t pad_id = policy.tokenizer.padding_id();
  auto run_eval = [&](int64_t step) -> nlohmann::json {
    if (!eval_set) return nullptr;
    return evaluate_for_run(policy, *eval_set, prompt_template, reward, cfg, step);
  };
  auto save = [&](int64_t step) {
    state.step = step;
    state.data_epoch = cursor.epoch();
    state.data_position = cursor.position();
    state.config_hash = start.config_hash;
    if (!auto_layers.empty()) state.extra["credit_layers"] = auto_layers;
    if (!receivers.traces.empty())
      state.extra["credit_receivers"] = {{"kurtosis_sum", receivers.kurtosis_sum}, {"traces", receivers.traces}};
    const std::string path =
        save_training_checkpoint(cfg.logging.run_dir, state, policy, optimizer, cfg.checkpoint.keep_last);
    log::info(str_cat("checkpoint ", path));
  };

  if (state.step == 0) {
    nlohmann::json line = {{"step", 0}};
    if (auto e = run_eval(0); !e.is_null()) line["eval"] = e;
    run.write_metrics(line);
  }

  // ---- the loop ------------------------------------------------------------------------------
  const auto run_start = Clock::now();
  const int64_t first_step = state.step;
  for (int64_t step = state.step + 1; step <= cfg.train.steps; ++step) {
    const auto step_start = Clock::now();
    double t_rollout = 0, t_reward = 0, t_forward = 0, t_backward = 0, t_credit = 0;
    int64_t train_positions = 0;  // padded positions of the training forward (FLOP accounting in benchmarks)
    int64_t generated_tokens = 0;

    // 1. rollout + 2. score: G samples for each of P prompts; with dynamic sampling, groups
    //    whose rewards are all equal carry no signal and are replaced by fresh prompts.
    std::vector<Sample> samples;
    int64_t groups_seen = 0, groups_kept = 0;
    for (int64_t round = 0; round < cfg.algo.max_sampling_rounds; ++round) {
      const int64_t need = cfg.rollout.prompts_per_step - groups_kept;
      if (need <= 0) break;
      const std::vector<size_t> examples = cursor.next(static_cast<size_t>(need));
      std::vector<std::vector<int64_t>> prompts;
      std::vector<std::string> prompt_texts;
      for (size_t e : examples) {
        prompt_texts.push_back(prompt_template.render(train_set[e].conversation(), true));
        const auto ids = encode_prompt(policy.tokenizer, prompt_template, prompt_texts.back());
        for (int64_t g = 0; g < G; ++g) prompts.push_back(ids);
      }
      SamplingParams params;
      params.max_new_tokens = cfg.rollout.max_new_tokens;
      params.temperature = cfg.rollout.temperature;
      params.top_p = cfg.rollout.top_p;
      params.top_k = cfg.rollout.top_k;
      params.stop_strings = cfg.rollout.stop;
      params.seed = derive_seed(cfg.train.seed, step, static_cast<uint64_t>(round));
      auto t0 = Clock::now();
      const RolloutBatch rollout = generate(policy.model, policy.tokenizer, prompts, params);
      t_rollout += seconds_since(t0);
      generated_tokens += rollout.generated_tokens;

      t0 = Clock::now();
      const at::Tensor lengths = rollout.response_mask.sum(1);
      for (size_t p = 0; p < examples.size(); ++p) {
        std::vector<Sample> group;
        for (int64_t g = 0; g < G; ++g) {
          const int64_t row = static_cast<int64_t>(p) * G + g;
          const int64_t len = lengths[row].item<int64_t>();
          Sample s;
          s.prompt = prompts[static_cast<size_t>(row)];
          const int64_t* ids = rollout.response_ids[row].data_ptr<int64_t>();
          const float* lps = rollout.sampling_logprobs[row].data_ptr<float>();
          s.response.assign(ids, ids + len);
          s.sampling_logprobs.assign(lps, lps + len);
          s.example = examples[p];
          s.truncated = rollout.finish_reasons[static_cast<size_t>(row)] == FinishReason::length;
          const auto b = reward.score({prompt_texts[p], rollout.response_texts[static_cast<size_t>(row)],
                                       train_set[examples[p]].row, len, cfg.rollout.max_new_tokens, s.truncated});
          s.reward = b.total;
          s.correct = b.correct;
          for (const auto& c : b.components) s.components.push_back(c.value);
          group.push_back(std::move(s));
        }
        ++groups_seen;
        bool informative = false;
        for (const auto& s : group) informative = informative || s.reward != group.front().reward;
        if (!cfg.algo.dynamic_sampling || informative) {
          for (auto& s : group) samples.push_back(std::move(s));
          ++groups_kept;
        }
      }
      t_reward += seconds_since(t0);
      if (!cfg.algo.dynamic_sampling) break;
    }

    nlohmann::json line = {{"step", step}, {"epoch", cursor.epoch()}};
    const double lr = learning_rate_at(step - 1, cfg.train.steps, cfg.optim);
    line["lr"] = lr;
    line["groups_kept"] = groups_kept;
    line["groups_seen"] = groups_seen;
    double reward_mean = 0, accuracy = 0, mean_len = 0;
    if (!samples.empty()) {
      const int64_t N = static_cast<int64_t>(samples.size());
      std::vector<float> reward_values;
      double correct = 0, len_sum = 0;
      std::vector<double> component_sums(reward.names().size(), 0.0);
      for (const auto& s : samples) {
        reward_values.push_back(static_cast<float>(s.reward));
        correct += s.correct;
        len_sum += static_cast<double>(s.response.size());
        for (size_t c = 0; c < s.components.size(); ++c) component_sums[c] += s.components[c];
      }
      at::Tensor rewards = torch::tensor(reward_values);
      reward_mean = rewards.mean().item<double>();
      accuracy = correct / static_cast<double>(N);
      mean_len = len_sum / static_cast<double>(N);
      line["reward_mean"] = reward_mean;
      line["reward_std"] = N > 1 ? rewards.std().item<double>() : 0.0;
      for (size_t c = 0; c < component_sums.size(); ++c)
        line["reward_components"][reward.names()[c]] = component_sums[c] / static_cast<double>(N);
      line["accuracy"] = accuracy;
      line["response_length"] = mean_len;

      // 3. old logprobs (current policy, no grad) and, in the same forward, the attention
      //    statistics of the credit map; reference logprobs if KL is on.
      std::vector<const std::vector<int64_t>*> prompt_rows, response_rows;
      for (const auto& s : samples) {
        prompt_rows.push_back(&s.prompt);
        response_rows.push_back(&s.response);
      }
      const StepBatch batch = pad_sequences(prompt_rows, response_rows, pad_id);
      const int64_t R = batch.response_ids.size(1);
      auto t0 = Clock::now();
      const at::Tensor sentence_ids =
          sentence_credit ? response_sentence_ids(policy.tokenizer, response_rows, R, cfg.credit.min_sentence_chars)
                          : at::Tensor();
      t_credit += seconds_since(t0);
      const int64_t micro = cfg.algo.micro_batch_size;
      // Fully on-policy (one epoch, one mini-batch) the importance ratio is 1 by construction: the
      // no-grad pass is skipped and the training forward's own log-probs stand in (as TRL does),
      // unless the credit map needs it — attention statistics and entropies must exist before
      // the loss is formed, and with batch-wide head ranking / running receiver heads they
      // pool every micro-batch of the step — or a KL penalty in the reward needs them first.
      const bool needs_pass = !on_policy || attention_credit || cfg.credit.strategy == "entropy" ||
                              (cfg.algo.kl_coef > 0 && cfg.algo.kl_in == "reward");
      credit::CreditOptions step_credit = cfg.credit;
      if (cfg.credit.layers.mode == "auto" && !auto_layers.empty()) step_credit.layers = {"list", auto_layers};
      PolicyPass old = needs_pass ? policy_pass(policy.model, batch, cfg.rollout.temperature, micro,
                                                cfg.credit.strategy == "entropy",
                                                attention_credit ? &step_credit : nullptr, sentence_ids)
                                  : PolicyPass{};
      if (old.attention && cfg.credit.layers.mode == "auto" && auto_layers.empty()) {
        const auto profiles = credit::layer_profiles(*old.attention, cfg.credit);
        auto_layers = credit::choose_layers(profiles, policy.model.config().num_hidden_layers,
                                             cfg.credit.auto_layer_count);
        std::string text;
        for (const auto& p : profiles)
          text += str_cat(" ", p.layer, ":", p.local_heads, "L/", p.global_heads, "G/", p.sink_heads, "S");
        log::info(str_cat("credit.layers auto: observing layers ", nlohmann::json(auto_layers).dump(),
                          " (per layer: clearly local / clearly global / sink heads:", text, ")"));
        line["credit_layers_chosen"] = auto_layers;
        old.attention = credit::select_layers(*old.attention, auto_layers);
      }
      const at::Tensor& old_logprobs = old.logprobs;
      t_credit += old.credit_seconds;
      at::Tensor ref_logprobs;
      if (reference) ref_logprobs = policy_pass(*reference, batch, cfg.rollout.temperature, micro, false).logprobs;
      t_forward += seconds_since(t0) - t_credit;
      const at::Tensor valid = batch.response_mask;
      // Sampler vs trainer log-probs of the same tokens: ~1e-6 unless the two paths diverge
      // (measured against the no-grad pass, or the training forward when that is skipped).
      at::Tensor sampled = torch::zeros({N, R}, torch::kFloat);
      for (int64_t i = 0; i < N; ++i) {
        const auto& lp = samples[static_cast<size_t>(i)].sampling_logprobs;
        if (!lp.empty()) sampled[i].slice(0, 0, static_cast<int64_t>(lp.size())).copy_(torch::tensor(lp));
      }
      auto mismatch = [&](const at::Tensor& trainer_logprobs) {
        return ((sampled - trainer_logprobs).abs() * valid.to(torch::kFloat)).sum().item<double>() /
               std::max<double>(1.0, valid.sum().item<double>());
      };
      if (old_logprobs.defined()) line["logprob_mismatch"] = mismatch(old_logprobs);

      // 4. advantages: group-normalised sequence advantages broadcast to tokens, each token's
      //    share scaled by the credit map's γ_t (detached).
      at::Tensor shaped_rewards = rewards;
      if (reference) {
        at::Tensor kl_tokens = kl_estimator(old_logprobs, ref_logprobs).masked_fill(valid.logical_not(), 0.0);
        line["kl_ref"] = (kl_tokens.sum() / valid.sum().clamp_min(1)).item<double>();
        if (cfg.algo.kl_in == "reward") shaped_rewards = rewards - cfg.algo.kl_coef * kl_tokens.sum(1);
      }
      const at::Tensor advantages = estimator(shaped_rewards, AdvantageOptions{G, cfg.algo.normalize_std, 1e-6});
      t0 = Clock::now();
      std::optional<credit::CreditMap> credit_map;
      if (old.attention)
        credit_map = credit::build_credit_map(*old.attention, cfg.credit, sentence_credit ? &receivers : nullptr,
                                              sentence_ids);
      credit::WeightInputs weight_inputs;
      weight_inputs.response_lengths = valid.sum(1);
      weight_inputs.width = R;
      weight_inputs.map = credit_map ? &*credit_map : nullptr;
      weight_inputs.entropy = old.entropy;
      weight_inputs.seed = derive_seed(cfg.train.seed, step, 2000);
      const at::Tensor gamma =
          credit::apply_sign_mode(credit::token_weights(weight_inputs, cfg.credit), advantages, cfg.credit.sign);
      const at::Tensor token_advantages = advantages.unsqueeze(1) * valid.to(torch::kFloat) * gamma;
      t_credit += seconds_since(t0);
      line["credit"] = credit_metrics(credit_map ? &*credit_map : nullptr, gamma, valid);

      // 5. PPO update: epochs x mini-batches; micro-batches accumulate gradients normalised by
      //    the mini-batch's global denominator, so accumulation equals the full mini-batch.
      set_learning_rate(optimizer, lr);
      const UpdateInputs update_inputs{batch, old_logprobs, ref_logprobs, token_advantages};
      UpdateOptions update_options;
      update_options.policy_loss = &policy_loss;
      update_options.loss = loss_options;
      update_options.aggregation = aggregation;
      update_options.norm_length = cfg.rollout.max_new_tokens;
      update_options.temperature = cfg.rollout.temperature;
      update_options.kl = reference && cfg.algo.kl_in == "loss" ? &kl_estimator : nullptr;
      update_options.kl_coef = cfg.algo.kl_coef;
      update_options.entropy_coef = cfg.algo.entropy_coef;
      update_options.micro_batch_size = micro;
      double loss_sum = 0, clip_sum = 0, entropy_sum = 0, grad_norm = 0;
      int64_t token_count = 0, updates = 0;
      const int64_t per_mini = N / cfg.algo.mini_batches;
      for (int64_t epoch = 0; epoch < cfg.algo.ppo_epochs; ++epoch) {
        auto gen = at::make_generator<at::CPUGeneratorImpl>(derive_seed(cfg.train.seed, step, 1000 + epoch));
        const at::Tensor order = cfg.algo.ppo_epochs * cfg.algo.mini_batches > 1
                                     ? torch::randperm(N, gen, torch::kLong)
                                     : torch::arange(N, torch::kLong);
        for (int64_t m = 0; per_mini > 0 && m + per_mini <= N; m += per_mini) {
          optimizer.zero_grad();
          const UpdateStats u = accumulate_policy_gradients(policy.model, update_inputs, order.slice(0, m, m + per_mini),
                                                            update_options);
          if (u.tokens == 0) continue;
          if (!old_logprobs.defined()) line["logprob_mismatch"] = mismatch(u.logprobs);
          t_forward += u.forward_seconds;
          t_backward += u.backward_seconds;
          train_positions += u.positions;
          const auto tb = Clock::now();
          if (cfg.optim.grad_clip > 0)
            grad_norm = torch::nn::utils::clip_grad_norm_(policy.model.parameters(), cfg.optim.grad_clip);
          optimizer.step();
          t_backward += seconds_since(tb);
          loss_sum += u.loss;
          clip_sum += u.clipped_tokens;
          entropy_sum += u.entropy_sum;
          token_count += u.tokens;
          ++updates;
        }
      }
      line["pg_loss"] = updates > 0 ? loss_sum / static_cast<double>(updates) : 0.0;
      line["clip_fraction"] = token_count > 0 ? clip_sum / static_cast<double>(token_count) : 0.0;
      line["entropy"] = token_count > 0 ? entropy_sum / static_cast<double>(token_count) : 0.0;
      line["grad_norm"] = grad_norm;
      line["optimizer_updates"] = updates;
    } else {
      log::warn(str_cat("step ", step, ": every group had equal rewards; no update"));
    }

    const double step_time = seconds_since(step_start);
    line["perf"] = {{"step_seconds", step_time},
                    {"rollout_seconds", t_rollout},
                    {"reward_seconds", t_reward},
                    {"forward_seconds", t_forward},
                    {"credit_seconds", t_credit},
                    {"credit_percent_of_step", 100.0 * t_credit / std::max(step_time, 1e-9)},
                    {"backward_seconds", t_backward},
                    {"train_positions", train_positions},
                    {"tokens_per_second", t_rollout > 0 ? static_cast<double>(generated_tokens) / t_rollout : 0.0},
                    {"peak_memory_mb", peak_host_memory_mb()},
                    {"peak_gpu_memory_mb", peak_device_memory_mb(options.device())}};
    const bool last = step == cfg.train.steps;
    if (cfg.train.eval_every > 0 && step % cfg.train.eval_every == 0 && !last) line["eval"] = run_eval(step);
    if (last) line["eval"] = run_eval(step);
    if (line.contains("eval") && line["eval"].is_null()) line.erase("eval");
    run.write_metrics(line);
    if (cfg.logging.progress) {
      const double per_step = seconds_since(run_start) / static_cast<double>(step - first_step);
      log::info(str_cat("step ", step, "/", cfg.train.steps, " | reward ", reward_mean, " | acc ", accuracy, " | len ",
                        mean_len, " | ", static_cast<int64_t>(line["perf"]["tokens_per_second"].get<double>()),
                        " tok/s | ", step_time, " s/step | ETA ",
                        format_duration(per_step * static_cast<double>(cfg.train.steps - step))));
    }
    const bool stop_now = opt.stop_after_step > 0 && step == opt.stop_after_step;
    if (last || (cfg.checkpoint.every > 0 && step % cfg.checkpoint.every == 0) || stop_now) save(step);
    if (stop_now) {
      log::info(str_cat("stopping after step ", step, " (--stop-after-step)"));
      return 0;
    }
  }
  return 0;
}

}  // namespace anchor
