#include "trainer/rl/rl_trainer.h"

#include <torch/torch.h>

#include <limits>
#include <optional>

#include "credit/credit_map.h"
#include "data/prompt_dataset.h"
#include "rewards/reward_function.h"
#include "trainer/algo/kl_penalty.h"
#include "trainer/algo/loss_aggregation.h"
#include "trainer/algo/policy_loss.h"
#include "trainer/common/error.h"
#include "trainer/common/log.h"
#include "trainer/common/test_hooks.h"
#include "trainer/config/train_config.h"
#include "trainer/distributed/communicator.h"
#include "trainer/distributed/parameter_sync.h"
#include "trainer/rl/advantage_stage.h"
#include "trainer/rl/credit_step.h"
#include "trainer/rl/fused_credit.h"
#include "trainer/rl/metric_sums.h"
#include "trainer/rl/mini_batch_plan.h"
#include "trainer/rl/old_policy_stage.h"
#include "trainer/rl/ppo_update.h"
#include "trainer/rl/prompt_limits.h"
#include "trainer/rl/rollout_stage.h"
#include "trainer/rl/step_shard.h"
#include "trainer/rollout/evaluation.h"
#include "trainer/run/training_run.h"

namespace anchor {
namespace {

// Everything an RL step reads that is fixed for the run, each part from its config section.
struct RlSetup {
  const TrainConfig& cfg;
  Pretrained& policy;
  std::optional<LlamaModel> reference;  // frozen KL reference; only when algo.kl_coef > 0 (without LoRA)
  // The KL reference's forward: `reference`, or with LoRA the policy itself, whose adapters the
  // scoring stage switches off (the base model); nullptr without KL.
  const LlamaModel* reference_model = nullptr;
  rewards::CompositeReward reward;
  data::ChatTemplate prompt_template;
  data::PromptDataset train_set;
  std::optional<data::PromptDataset> eval_set;
  UpdateOptions update;  // loss, aggregation, KL and entropy terms, micro-batch size
  // The credit.layers auto choice and the running receiver-head estimate (checkpointed).
  CreditState credit;
};

// Datasets: every row renders with the template, can be judged by the reward and fits the
// model (data.max_prompt_tokens).
data::PromptDataset load_prompts(const std::string& path, const RlSetup& s) {
  const TrainConfig& cfg = s.cfg;
  const data::PromptDataset raw = data::PromptDataset::load_jsonl(path, cfg.data.prompt_key);
  raw.check_renders_with(s.prompt_template, "data.template");
  raw.check_rows([&](const nlohmann::json& row) { return s.reward.row_problem(row); });
  const PromptLimit limit = prompt_limit(s.policy.model.config(), cfg.rollout.max_new_tokens, cfg.data.max_prompt_tokens);
  return fit_prompts(raw, s.policy.tokenizer, s.prompt_template, limit, cfg.data.too_long_prompts == TooLongPrompts::skip,
                     "data.too_long_prompts: skip");
}

std::unique_ptr<RlSetup> setup_rl(TrainingRun& run) {
  const TrainConfig& cfg = run.config();
  Pretrained& policy = run.policy();
  auto s = std::unique_ptr<RlSetup>(new RlSetup{cfg, policy, std::nullopt, nullptr, rewards::CompositeReward(cfg.reward.components),
                                                chat_template_for(policy, cfg.data.template_, "data.template"),
                                                {}, std::nullopt, {}, {}});
  // The KL reference is the run's starting point (model.path or --init-from), remembered in
  // the checkpoints so that a resumed run keeps the same reference.
  nlohmann::json& extra = run.state().extra;
  if (!extra.contains("reference_from")) extra["reference_from"] = run.weights_from();
  if (cfg.algo.kl_coef > 0 && policy.model.has_lora()) {
    s->reference_model = &policy.model;  // no second model: the base under the adapters
  } else if (cfg.algo.kl_coef > 0) {
    s->reference.emplace(load_model(extra["reference_from"].get<std::string>(), run.compute_options().dtype(torch::kFloat)));
    s->reference->set_requires_grad(false);
    s->reference->set_compute_dtype(run.compute_options().dtype().toScalarType());
    s->reference_model = &*s->reference;
  }
  s->train_set = load_prompts(cfg.data.train, *s);
  if (!cfg.data.eval.empty()) s->eval_set = load_prompts(cfg.data.eval, *s);
  log::info(str_cat("prompts: ", s->prompt_template.describe()));

  UpdateOptions& u = s->update;
  u.policy_loss = &policy_losses().get(cfg.algo.policy_loss);
  u.loss = PolicyLossOptions{cfg.algo.clip_low, cfg.algo.clip_high, cfg.algo.dual_clip};
  u.aggregation = cfg.algo.loss_agg;
  u.norm_length = cfg.rollout.max_new_tokens;
  u.temperature = cfg.rollout.temperature;
  u.kl = s->reference_model && cfg.algo.kl_in == KlPlacement::loss ? &kl_estimators().get(cfg.algo.kl_estimator) : nullptr;
  u.kl_coef = cfg.algo.kl_coef;
  u.entropy_coef = cfg.algo.entropy_coef;
  u.micro_batch_size = cfg.algo.micro_batch_size;
  u.share_prompts = cfg.algo.shared_prompts;

  if (credit::strategy_uses_attention(cfg.credit.strategy))
    credit::observed_layers(cfg.credit.layers, policy.model.config().num_hidden_layers);  // checks
  if (extra.contains("credit_layers")) s->credit.auto_layers = extra["credit_layers"].get<std::vector<int64_t>>();
  if (extra.contains("credit_receivers")) {
    s->credit.receivers.kurtosis_sum = extra["credit_receivers"]["kurtosis_sum"].get<std::vector<double>>();
    s->credit.receivers.traces = extra["credit_receivers"]["traces"].get<std::vector<int64_t>>();
  }
  return s;
}

// The credit state goes into every checkpoint with the rest of the trainer state.
void remember_credit_state(const CreditState& credit, nlohmann::json& extra) {
  if (!credit.auto_layers.empty()) extra["credit_layers"] = credit.auto_layers;
  if (!credit.receivers.traces.empty())
    extra["credit_receivers"] = {{"kurtosis_sum", credit.receivers.kurtosis_sum}, {"traces", credit.receivers.traces}};
}

// Rewards, accuracy and lengths of the step's global batch (the same on every rank).
void add_rollout_metrics(nlohmann::json& line, const ScoredRollouts& r, const rewards::CompositeReward& reward) {
  line["groups_kept"] = r.groups_kept;
  line["groups_seen"] = r.groups_seen;
  if (r.size() == 0) return;
  line["reward_mean"] = r.rewards.mean().item<double>();
  line["reward_std"] = r.size() > 1 ? r.rewards.std().item<double>() : 0.0;
  const at::Tensor component_means = r.components.mean(0);
  for (size_t c = 0; c < reward.columns().size(); ++c)
    line["reward_components"][reward.columns()[c]] = component_means[static_cast<int64_t>(c)].item<double>();
  line["accuracy"] = r.correct.to(torch::kDouble).mean().item<double>();
  line["response_length"] = r.batch.response_mask.sum(1).to(torch::kDouble).mean().item<double>();
}

// Sampler vs trainer log-probs of the same tokens: ~1e-6 unless the two paths diverge.
void add_logprob_mismatch(MetricSums& sums, const at::Tensor& sampling, const at::Tensor& trainer,
                          const at::Tensor& valid) {
  sums.add("logprob_mismatch", ((sampling - trainer).abs() * valid.to(torch::kFloat)).sum().item<double>());
  sums.add("logprob_tokens", valid.sum().item<double>());
}

struct UpdateTotals {
  double grad_norm = 0, forward_seconds = 0, backward_seconds = 0;
  int64_t updates = 0, positions = 0;
};

// Stage 5: algo.ppo_epochs x algo.mini_batches optimizer steps over the global batch. Each
// rank accumulates the gradients of its rows of a mini-batch, normalised by the whole
// mini-batch's denominator, so the sum over ranks equals one process's gradient. A NaN / Inf
// (in `nonfinite` already, or found here) leaves the weights as they were.
UpdateTotals update_policy(RlSetup& s, TrainingRun& run, const at::Tensor& global_mask, const ScoredRollouts& mine,
                           const StepShard& shard, const UpdateInputs& inputs, int64_t step, std::string& nonfinite,
                           MetricSums& sums) {
  UpdateTotals t;
  UpdateOptions options = s.update;
  Optimizer& optimizer = run.optimizer();
  for (const MiniBatch& mb : mini_batch_plan(global_mask, shard.rows, s.cfg.algo.ppo_epochs,
                                             s.cfg.algo.mini_batches, options.aggregation, s.cfg.train.seed, step)) {
    if (mb.denominator <= 0 || !nonfinite.empty()) continue;
    optimizer.zero_grad(/*replicated=*/shard.sum == nullptr);
    options.denominator = mb.denominator;
    // ZeRO stage 2 reduces after every micro-batch's backward, a collective: a rank with fewer
    // micro-batches in this mini-batch than another makes up the difference afterwards.
    int64_t backwards = 0, most_backwards = 0;
    if (shard.sum && optimizer.after_backward_is_collective()) {
      const int64_t mine = micro_batch_count(mb.local_rows.numel(), options.micro_batch_size);
      most_backwards = shard.sum->all_gather(torch::tensor({mine}, torch::kLong), "micro-batch counts").max().item<int64_t>();
    }
    options.after_backward = [&optimizer, &backwards] {
      optimizer.after_backward();
      ++backwards;
    };
    const UpdateStats u = accumulate_policy_gradients(s.policy.model, inputs, mb.local_rows, options);
    // Fully on-policy the no-grad pass is skipped: the training forward's log-probs are compared.
    if (!inputs.old_logprobs.defined() && u.logprobs.defined())
      add_logprob_mismatch(sums, mine.sampling_logprobs, u.logprobs, mine.batch.response_mask);
    t.forward_seconds += u.forward_seconds;
    t.backward_seconds += u.backward_seconds;
    t.positions += u.positions;
    for (; backwards < most_backwards; ++backwards) optimizer.after_backward();
    const auto clock = std::chrono::steady_clock::now();
    t.grad_norm = clip_and_step(optimizer, s.cfg.optim.grad_clip, step, u.loss, nonfinite);
    t.backward_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - clock).count();
    if (!nonfinite.empty()) continue;
    sums.add("pg_loss", u.loss);
    sums.add("clipped_tokens", u.clipped_tokens);
    sums.add("entropy", u.entropy_sum);
    sums.add("update_tokens", static_cast<double>(u.tokens));
    ++t.updates;
  }
  return t;
}

// One RL step (docs/design.md, "One RL step").
StepReport rl_step(RlSetup& s, TrainingRun& run, int64_t step, nlohmann::json line) {
  const TrainConfig& cfg = s.cfg;
  dist::Communicator& comm = run.comm();
  StepReport report{std::move(line), "", ""};

  // 1. rollout + 2. score: the step's global batch of whole groups, on every rank.
  run.memory_phase("rollout");
  ScoredRollouts rollouts = collect_scored_rollouts(
      RolloutContext{s.policy, s.train_set, s.prompt_template, s.reward, cfg, comm, run.memory_plan().rollout_chunk_rows}, run.cursor(), step);
  inject_rank_fault(comm.rank(), step);
  if (test_poisoned(step, "reward") && rollouts.size() > 0) rollouts.rewards[0] = std::numeric_limits<float>::quiet_NaN();
  add_rollout_metrics(report.line, rollouts, s.reward);
  nlohmann::json& perf = report.line["perf"];
  perf = {{"forward_seconds", 0.0}, {"backward_seconds", 0.0}, {"credit_seconds", 0.0}, {"train_positions", 0}};
  perf["rollout_seconds"] = rollouts.rollout_seconds;
  perf["reward_seconds"] = rollouts.reward_seconds;
  perf["tokens_per_second"] = rollouts.rollout_seconds > 0
                                  ? static_cast<double>(rollouts.generated_tokens) / rollouts.rollout_seconds
                                  : 0.0;
  report.progress = str_cat("reward ", report.line.value("reward_mean", 0.0), " | acc ",
                            report.line.value("accuracy", 0.0), " | len ", report.line.value("response_length", 0.0),
                            " | ", static_cast<int64_t>(perf["tokens_per_second"].get<double>()), " tok/s");
  if (rollouts.size() == 0) {
    log::warn(str_cat("step ", step, ": every group had equal rewards; no update"));
    return report;
  }
  if (!torch::isfinite(rollouts.rewards).all().item<bool>()) report.nonfinite = "reward";

  // This rank's share of the groups; sums over ranks go through shard.sum.
  const StepShard shard = shard_step(rollouts.groups_kept, cfg.rollout.samples_per_prompt, comm.rank(), comm.size(), &comm);
  const ScoredRollouts mine = rollouts.select(shard.rows);
  const at::Tensor valid = mine.batch.response_mask;
  MetricSums sums;

  // 3. old log-probs (current policy, no grad) and, in the same forward, the attention
  //    statistics of the credit map; reference log-probs if KL is on.
  credit::BatchSum pooled = [&](const at::Tensor& t) {
    at::Tensor total = t.to(torch::kDouble).contiguous().clone();
    shard.sum->all_reduce_sum(total, "pooled credit statistics");
    return total.to(t.scalar_type());
  };
  run.memory_phase("scoring");
  const OldPolicyOutputs old = score_with_old_policy(s.policy, s.reference_model, mine.batch, cfg,
                                                     s.credit, shard.sum ? &pooled : nullptr);
  remember_credit_state(s.credit, run.state().extra);
  if (!old.chosen_layers.empty()) report.line["credit_layers_chosen"] = old.chosen_layers;
  if (old.logprobs.defined()) add_logprob_mismatch(sums, mine.sampling_logprobs, old.logprobs, valid);

  // 4. advantages: group-normalised sequence advantages broadcast to tokens, each token's
  //    share scaled by the credit map's γ_t (detached).
  const auto credit_clock = std::chrono::steady_clock::now();
  const credit::BatchGather gather = [&](const at::Tensor& t) { return comm.all_gather(t, "forking-token entropies"); };
  const StepAdvantages advantages = compute_advantages(mine, old, cfg, shard.rows, step, shard.sum ? &gather : nullptr);
  const double advantage_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - credit_clock).count();
  if (advantages.kl_tokens.defined()) {
    sums.add("kl_ref", advantages.kl_tokens.sum().item<double>());
    sums.add("kl_tokens", valid.sum().item<double>());
  }
  // On-policy attention credit with a ranking inside one micro-batch comes from the training
  // forward itself: γ is applied per micro-batch in stage 5 (fused_credit.h).
  std::optional<TrainingForwardCredit> in_forward;
  if (old.credit_in_training_forward) {
    in_forward.emplace(TrainingForwardCreditInputs{&cfg, s.policy.model.config().num_hidden_layers,
                                                   s.policy.model.config().num_attention_heads, old.sentence_ids,
                                                   advantages.sequence, shard.rows, advantages.credit_seed},
                       s.credit, sums);
  } else {
    add_credit_sums(sums, old.credit_map ? &*old.credit_map : nullptr, advantages.gamma, valid);
  }

  // 5. PPO update.
  run.memory_phase("update");
  const UpdateInputs inputs{mine.batch, old.logprobs, old.ref_logprobs, advantages.tokens,
                            in_forward ? &*in_forward : nullptr};
  const UpdateTotals u = update_policy(s, run, rollouts.batch.response_mask, mine, shard, inputs, step, report.nonfinite, sums);
  if (in_forward) {
    in_forward->finish(shard.sum ? &pooled : nullptr);
    remember_credit_state(s.credit, run.state().extra);
  }

  // 6. metrics: one reduction of the step's sums over ranks.
  if (shard.sum) sums.reduce(*shard.sum);
  nlohmann::json& l = report.line;
  if (sums.has("logprob_mismatch")) l["logprob_mismatch"] = sums["logprob_mismatch"] / std::max(1.0, sums["logprob_tokens"]);
  if (sums.has("kl_ref")) l["kl_ref"] = sums["kl_ref"] / std::max(1.0, sums["kl_tokens"]);
  l["credit"] = credit_metrics(sums);
  const double tokens = sums["update_tokens"];
  l["pg_loss"] = u.updates > 0 ? sums["pg_loss"] / static_cast<double>(u.updates) : 0.0;
  l["clip_fraction"] = tokens > 0 ? sums["clipped_tokens"] / tokens : 0.0;
  l["entropy"] = tokens > 0 ? sums["entropy"] / tokens : 0.0;
  l["grad_norm"] = u.grad_norm;
  l["optimizer_updates"] = u.updates;
  const double credit_seconds = old.credit_seconds + advantage_seconds + (in_forward ? in_forward->seconds() : 0.0);
  perf["forward_seconds"] = old.forward_seconds + u.forward_seconds;
  perf["backward_seconds"] = u.backward_seconds;
  perf["credit_seconds"] = credit_seconds;
  perf["credit_percent_of_step"] = 100.0 * credit_seconds / std::max(run.seconds_in_step(), 1e-9);
  perf["train_positions"] = u.positions;  // padded positions of the training forward (FLOP accounting)
  return report;
}

}  // namespace

int run_rl_training(const TrainRunOptions& options) {
  TrainingRun run(options, ConfigUse::rl, "train", dist::Communicator::world());
  std::unique_ptr<RlSetup> rl = setup_rl(run);
  run.begin(rl->train_set.size(), [&](int64_t step) -> nlohmann::json {
    if (!rl->eval_set) return nullptr;
    return evaluate_for_run(rl->policy, *rl->eval_set, rl->prompt_template, rl->reward, rl->cfg, step,
                            run.memory_plan().eval_chunk_rows, &run.comm());
  }, /*data_parallel_gradients=*/true);
  for (int64_t step = run.first_step(); step <= run.config().train.steps; ++step) {
    StepReport report = rl_step(*rl, run, step, run.begin_step(step));
    if (!run.end_step(step, std::move(report))) break;
  }
  return 0;
}

}  // namespace anchor
