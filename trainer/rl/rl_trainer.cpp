#include "trainer/rl/rl_trainer.h"

#include <torch/torch.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <thread>

#include "credit/credit_map.h"
#include "credit/token_weights.h"
#include "data/prompt_dataset.h"
#include "rewards/reward_function.h"
#include "trainer/algo/kl_penalty.h"
#include "trainer/algo/loss_aggregation.h"
#include "trainer/algo/policy_loss.h"
#include "trainer/checkpoint/checkpoint.h"
#include "trainer/checkpoint/run_setup.h"
#include "trainer/checkpoint/training_checkpoint.h"
#include "trainer/common/device.h"
#include "trainer/common/error.h"
#include "trainer/common/log.h"
#include "trainer/common/stop_request.h"
#include "trainer/common/test_hooks.h"
#include "trainer/config/train_config.h"
#include "trainer/optim/lr_schedule.h"
#include "trainer/distributed/communicator.h"
#include "trainer/distributed/parameter_sync.h"
#include "trainer/rl/advantage_stage.h"
#include "trainer/rl/credit_step.h"
#include "trainer/rl/evaluation.h"
#include "trainer/rl/metric_sums.h"
#include "trainer/rl/mini_batch_plan.h"
#include "trainer/rl/old_policy_stage.h"
#include "trainer/rl/prompt_limits.h"
#include "trainer/rl/ppo_update.h"
#include "trainer/rl/rollout_stage.h"
#include "trainer/rl/step_shard.h"

namespace anchor {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string format_duration(double seconds) {
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  return s >= 3600 ? str_cat(s / 3600, "h", (s % 3600) / 60, "m") : str_cat(s / 60, "m", s % 60, "s");
}

// Test-only fault injection (tests/python/check_data_parallel.py):
// ANCHOR_TEST_FAULT="<rank>:<step>:throw|kill|hang" makes that rank throw an error, SIGKILL
// itself, or stop responding, after the step's rollouts — mid-step, while the other ranks wait
// in a collective.
void maybe_inject_fault(int rank, int64_t step) {
  const char* spec = std::getenv("ANCHOR_TEST_FAULT");
  if (spec == nullptr) return;
  int r = -1;
  long long s = -1;
  char kind[16] = {0};
  if (std::sscanf(spec, "%d:%lld:%15s", &r, &s, kind) != 3 || r != rank || s != step) return;
  if (std::string(kind) == "kill") std::raise(SIGKILL);
  if (std::string(kind) == "hang") std::this_thread::sleep_for(std::chrono::hours(1));
  AR_FAIL("ANCHOR_TEST_FAULT: injected error at step ", step);
}

// CPU threads per rank: model.threads, or the node's cores shared by its ranks.
int64_t threads_per_rank(int64_t configured, const dist::Communicator& comm) {
  if (configured > 0 || !comm.distributed()) return configured;
  const int64_t cores = std::max<int64_t>(1, static_cast<int64_t>(std::thread::hardware_concurrency()));
  return std::max<int64_t>(1, cores / comm.local_size());
}

// model.device cuda means this rank's GPU, cuda:<local rank>, when data parallel.
std::string device_of_rank(const std::string& device, const dist::Communicator& comm) {
  return device == "cuda" && comm.distributed() ? str_cat("cuda:", comm.local_rank()) : device;
}

}  // namespace

int run_rl_training(const TrainRunOptions& opt) {
  // ---- the data-parallel world, configuration, run directory, starting point ----------------
  dist::Communicator& comm = dist::Communicator::world();
  const bool writer = comm.rank() == 0;  // rank 0 writes the run directory, metrics and checkpoints
  if (!writer) log::set_level(log::Level::warn);
  if (comm.distributed()) log::set_prefix(dist::rank_prefix());
  RunStart start = start_run(opt, ConfigUse::rl, "train", writer);
  const TrainConfig& cfg = start.config;
  TrainerState& state = start.state;
  comm.set_timeout(cfg.distributed.timeout_seconds);
  if (comm.distributed())
    log::info(str_cat("data parallel: ", comm.size(), " ranks (", comm.local_size(), " on this node)"));
  if (!start.checkpoint_dir.empty() && state.world_size != comm.size())
    log::info(str_cat("resuming a checkpoint of world size ", state.world_size, " with ", comm.size(),
                      " ranks: the state is global (data position, seeds, optimizer), so the run continues as "
                      "one process would"));

  // ---- components, each from its config section ---------------------------------------------
  const at::TensorOptions options =
      resolve_device(device_of_rank(cfg.model.device, comm), cfg.model.dtype,
                     threads_per_rank(cfg.model.threads, comm), "model");
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

  const rewards::CompositeReward reward(cfg.reward.components);
  // Datasets: every row renders with the template, can be judged by the reward and fits the
  // model (data.max_prompt_tokens).
  const data::ChatTemplate prompt_template = chat_template_for(policy, cfg.data.template_, "data.template");
  const PromptLimit prompt_length =
      prompt_limit(policy.model.config(), cfg.rollout.max_new_tokens, cfg.data.max_prompt_tokens);
  auto load_prompts = [&](const std::string& path) {
    const data::PromptDataset raw = data::PromptDataset::load_jsonl(path, cfg.data.prompt_key);
    raw.check_renders_with(prompt_template, "data.template");
    raw.check_rows([&](const nlohmann::json& row) { return reward.row_problem(row); });
    return fit_prompts(raw, policy.tokenizer, prompt_template, prompt_length, cfg.data.too_long_prompts == "skip",
                       "data.too_long_prompts: skip");
  };
  const data::PromptDataset train_set = load_prompts(cfg.data.train);
  std::optional<data::PromptDataset> eval_set;
  if (!cfg.data.eval.empty()) eval_set = load_prompts(cfg.data.eval);
  log::info(str_cat("prompts: ", prompt_template.describe()));
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
  // Every rank starts from rank 0's weights (the optimizer state is restored from the same files).
  dist::broadcast_parameters(policy.model.parameters(), comm);
  if (writer) start.run->open_metrics(state.step);

  // Credit (DESIGN 5): the credit.layers auto choice and the running receiver-head estimate of
  // thought anchors, carried across steps in the checkpoints.
  if (credit::strategy_uses_attention(cfg.credit.strategy))
    credit::observed_layers(cfg.credit.layers, policy.model.config().num_hidden_layers);  // checks
  CreditState credit_state;
  if (state.extra.contains("credit_layers"))
    credit_state.auto_layers = state.extra["credit_layers"].get<std::vector<int64_t>>();
  if (state.extra.contains("credit_receivers")) {
    credit_state.receivers.kurtosis_sum = state.extra["credit_receivers"]["kurtosis_sum"].get<std::vector<double>>();
    credit_state.receivers.traces = state.extra["credit_receivers"]["traces"].get<std::vector<int64_t>>();
  }

  const int64_t G = cfg.rollout.samples_per_prompt;
  const RolloutContext rollout_context{policy, train_set, prompt_template, reward, cfg, comm};
  auto run_eval = [&](int64_t step) -> nlohmann::json {
    if (!eval_set) return nullptr;
    return evaluate_for_run(policy, *eval_set, prompt_template, reward, cfg, step, &comm);
  };
  auto save = [&](int64_t step) {
    state.step = step;
    state.data_epoch = cursor.epoch();
    state.data_position = cursor.position();
    state.config_hash = start.config_hash;
    state.world_size = comm.size();
    if (!credit_state.auto_layers.empty()) state.extra["credit_layers"] = credit_state.auto_layers;
    if (!credit_state.receivers.traces.empty())
      state.extra["credit_receivers"] = {{"kurtosis_sum", credit_state.receivers.kurtosis_sum},
                                         {"traces", credit_state.receivers.traces}};
    // Every rank has finished the step; rank 0 writes (DONE last), the others wait for it.
    comm.barrier("checkpoint (before)");
    if (writer) {
      const std::string path =
          save_training_checkpoint(cfg.logging.run_dir, state, policy, optimizer, cfg.checkpoint.keep_last);
      log::info(str_cat("checkpoint ", path));
    }
    comm.barrier("checkpoint (written)");
  };

  if (state.step == 0) {
    nlohmann::json line = {{"step", 0}};
    if (auto e = run_eval(0); !e.is_null()) line["eval"] = e;
    if (writer) start.run->write_metrics(line);
  }

  // ---- the loop ------------------------------------------------------------------------------
  install_stop_handlers();  // SIGTERM / SIGINT: finish the step, checkpoint, exit 0
  const auto run_start = Clock::now();
  const int64_t first_step = state.step;
  comm.take_comm_seconds();
  for (int64_t step = state.step + 1; step <= cfg.train.steps; ++step) {
    const auto step_start = Clock::now();
    double t_forward = 0, t_backward = 0, t_credit = 0;
    int64_t train_positions = 0;  // padded positions of the training forward (FLOP accounting in benchmarks)

    // 1. rollout + 2. score: the step's global batch of whole groups, on every rank.
    ScoredRollouts rollouts = collect_scored_rollouts(rollout_context, cursor, step);
    maybe_inject_fault(comm.rank(), step);
    if (test_poisoned(step, "reward") && rollouts.size() > 0) rollouts.rewards[0] = std::numeric_limits<float>::quiet_NaN();
    const int64_t N = rollouts.size();
    // This rank's share of the groups; sums over ranks go through shard.sum.
    const StepShard shard = shard_step(rollouts.groups_kept, G, comm.rank(), comm.size(), &comm);

    nlohmann::json line = {{"step", step}, {"epoch", cursor.epoch()}};
    const double lr = learning_rate_at(step - 1, cfg.train.steps, cfg.optim);
    line["lr"] = lr;
    line["groups_kept"] = rollouts.groups_kept;
    line["groups_seen"] = rollouts.groups_seen;
    double reward_mean = 0, accuracy = 0, mean_len = 0;
    MetricSums sums;
    // Non-finite values (DESIGN: a NaN at step 3 000 must not ruin the run): the stage where one
    // appeared; the step then applies no optimizer update.
    std::string nonfinite;
    if (N > 0 && !torch::isfinite(rollouts.rewards).all().item<bool>()) nonfinite = "reward";
    if (N > 0) {
      const at::Tensor lengths = rollouts.batch.response_mask.sum(1).to(torch::kDouble);
      reward_mean = rollouts.rewards.mean().item<double>();
      accuracy = rollouts.correct.to(torch::kDouble).mean().item<double>();
      mean_len = lengths.mean().item<double>();
      line["reward_mean"] = reward_mean;
      line["reward_std"] = N > 1 ? rollouts.rewards.std().item<double>() : 0.0;
      const at::Tensor component_means = rollouts.components.mean(0);
      for (size_t c = 0; c < reward.names().size(); ++c)
        line["reward_components"][reward.names()[c]] = component_means[static_cast<int64_t>(c)].item<double>();
      line["accuracy"] = accuracy;
      line["response_length"] = mean_len;

      const ScoredRollouts mine = rollouts.select(shard.rows);
      const at::Tensor valid = mine.batch.response_mask;
      credit::BatchSum batch_sum = [&](const at::Tensor& t) {
        at::Tensor total = t.to(torch::kDouble).contiguous().clone();
        shard.sum->all_reduce_sum(total, "pooled credit statistics");
        return total.to(t.scalar_type());
      };

      // 3. old log-probs (current policy, no grad) and, in the same forward, the attention
      //    statistics of the credit map; reference log-probs if KL is on.
      const OldPolicyOutputs old = score_with_old_policy(policy, reference ? &*reference : nullptr, mine.batch, cfg,
                                                         credit_state, shard.sum ? &batch_sum : nullptr);
      t_forward += old.forward_seconds;
      t_credit += old.credit_seconds;
      if (!old.chosen_layers.empty()) line["credit_layers_chosen"] = old.chosen_layers;
      // Sampler vs trainer log-probs of the same tokens: ~1e-6 unless the two paths diverge
      // (measured against the no-grad pass, or the training forward when that is skipped).
      auto add_mismatch = [&](const at::Tensor& trainer_logprobs) {
        sums.add("logprob_mismatch", ((mine.sampling_logprobs - trainer_logprobs).abs() * valid.to(torch::kFloat))
                                         .sum()
                                         .item<double>());
        sums.add("logprob_tokens", valid.sum().item<double>());
      };
      if (old.logprobs.defined()) add_mismatch(old.logprobs);

      // 4. advantages: group-normalised sequence advantages broadcast to tokens, each token's
      //    share scaled by the credit map's γ_t (detached).
      const auto t0 = Clock::now();
      const StepAdvantages advantages = compute_advantages(mine, old, cfg, shard.rows, step);
      t_credit += seconds_since(t0);
      if (advantages.kl_tokens.defined()) {
        sums.add("kl_ref", advantages.kl_tokens.sum().item<double>());
        sums.add("kl_tokens", valid.sum().item<double>());
      }
      add_credit_sums(sums, old.credit_map ? &*old.credit_map : nullptr, advantages.gamma, valid);

      // 5. PPO update: epochs x mini-batches over the global batch; each rank accumulates the
      //    gradients of its rows of a mini-batch, normalised by the whole mini-batch's
      //    denominator, and the sum over ranks equals one process's gradient.
      set_learning_rate(optimizer, lr);
      const UpdateInputs update_inputs{mine.batch, old.logprobs, old.ref_logprobs, advantages.tokens};
      UpdateOptions update_options;
      update_options.policy_loss = &policy_loss;
      update_options.loss = loss_options;
      update_options.aggregation = aggregation;
      update_options.norm_length = cfg.rollout.max_new_tokens;
      update_options.temperature = cfg.rollout.temperature;
      update_options.kl = reference && cfg.algo.kl_in == "loss" ? &kl_estimator : nullptr;
      update_options.kl_coef = cfg.algo.kl_coef;
      update_options.entropy_coef = cfg.algo.entropy_coef;
      update_options.micro_batch_size = cfg.algo.micro_batch_size;
      double grad_norm = 0;
      int64_t updates = 0;
      for (const MiniBatch& mb : mini_batch_plan(rollouts.batch.response_mask, shard.rows, cfg.algo.ppo_epochs,
                                                 cfg.algo.mini_batches, aggregation, cfg.train.seed, step)) {
        if (mb.denominator <= 0 || !nonfinite.empty()) continue;
        optimizer.zero_grad();
        update_options.denominator = mb.denominator;
        const UpdateStats u = accumulate_policy_gradients(policy.model, update_inputs, mb.local_rows, update_options);
        if (!old.logprobs.defined() && u.logprobs.defined()) add_mismatch(u.logprobs);
        t_forward += u.forward_seconds;
        t_backward += u.backward_seconds;
        train_positions += u.positions;
        const auto tb = Clock::now();
        if (shard.sum) dist::all_reduce_gradients(policy.model.parameters(), *shard.sum);
        if (test_poisoned(step, "gradient")) {
          torch::NoGradGuard no_grad;
          policy.model.parameters().front().mutable_grad().view({-1})[0] = std::numeric_limits<float>::quiet_NaN();
        }
        // The global gradient norm (the same on every rank after the all-reduce) decides.
        grad_norm = torch::nn::utils::clip_grad_norm_(
            policy.model.parameters(),
            cfg.optim.grad_clip > 0 ? cfg.optim.grad_clip : std::numeric_limits<double>::infinity());
        if (!std::isfinite(grad_norm)) {
          nonfinite = std::isfinite(u.loss) ? "gradients" : "loss";
          optimizer.zero_grad();
          t_backward += seconds_since(tb);
          continue;
        }
        optimizer.step();
        t_backward += seconds_since(tb);
        sums.add("pg_loss", u.loss);
        sums.add("clipped_tokens", u.clipped_tokens);
        sums.add("entropy", u.entropy_sum);
        sums.add("update_tokens", static_cast<double>(u.tokens));
        ++updates;
      }

      // 6. metrics: one reduction of the step's sums over ranks.
      if (shard.sum) sums.reduce(*shard.sum);
      if (sums.has("logprob_mismatch"))
        line["logprob_mismatch"] = sums["logprob_mismatch"] / std::max(1.0, sums["logprob_tokens"]);
      if (sums.has("kl_ref")) line["kl_ref"] = sums["kl_ref"] / std::max(1.0, sums["kl_tokens"]);
      line["credit"] = credit_metrics(sums);
      const double tokens = sums["update_tokens"];
      line["pg_loss"] = updates > 0 ? sums["pg_loss"] / static_cast<double>(updates) : 0.0;
      line["clip_fraction"] = tokens > 0 ? sums["clipped_tokens"] / tokens : 0.0;
      line["entropy"] = tokens > 0 ? sums["entropy"] / tokens : 0.0;
      line["grad_norm"] = grad_norm;
      line["optimizer_updates"] = updates;
    } else {
      log::warn(str_cat("step ", step, ": every group had equal rewards; no update"));
    }
    int64_t skipped_total = state.extra.value("skipped_steps", int64_t{0});
    int64_t skipped_in_a_row = state.extra.value("consecutive_skips", int64_t{0});
    if (!nonfinite.empty()) {
      ++skipped_total;
      ++skipped_in_a_row;
      line["skipped"] = nonfinite;
      log::warn(str_cat("step ", step, ": non-finite value in the ", nonfinite, " (NaN or Inf); optimizer step skipped (",
                        skipped_in_a_row, " in a row, at most ", cfg.train.max_consecutive_skips, ")"));
    } else {
      skipped_in_a_row = 0;
    }
    state.extra["skipped_steps"] = skipped_total;
    state.extra["consecutive_skips"] = skipped_in_a_row;
    line["skipped_steps"] = skipped_total;

    const double step_time = seconds_since(step_start);
    const double comm_time = comm.take_comm_seconds();
    line["perf"] = {{"step_seconds", step_time},
                    {"rollout_seconds", rollouts.rollout_seconds},
                    {"reward_seconds", rollouts.reward_seconds},
                    {"forward_seconds", t_forward},
                    {"credit_seconds", t_credit},
                    {"credit_percent_of_step", 100.0 * t_credit / std::max(step_time, 1e-9)},
                    {"backward_seconds", t_backward},
                    {"comm_seconds", comm_time},
                    {"world_size", comm.size()},
                    {"train_positions", train_positions},
                    {"tokens_per_second", rollouts.rollout_seconds > 0
                                              ? static_cast<double>(rollouts.generated_tokens) / rollouts.rollout_seconds
                                              : 0.0},
                    {"peak_memory_mb", peak_host_memory_mb()},
                    {"peak_gpu_memory_mb", peak_device_memory_mb(options.device())}};
    const bool last = step == cfg.train.steps;
    if (cfg.train.eval_every > 0 && step % cfg.train.eval_every == 0 && !last) line["eval"] = run_eval(step);
    if (last) line["eval"] = run_eval(step);
    if (line.contains("eval") && line["eval"].is_null()) line.erase("eval");
    if (writer) start.run->write_metrics(line);
    AR_CHECK(skipped_in_a_row < cfg.train.max_consecutive_skips, "step ", step, ": ", skipped_in_a_row,
             " consecutive steps with non-finite values (last in the ", nonfinite,
             "; train.max_consecutive_skips); stopping. The weights were never updated with them: the newest "
             "checkpoint in ", cfg.logging.run_dir, "/checkpoints is intact (resume with --resume latest after fixing "
             "the cause)");
    if (cfg.logging.progress && writer) {
      const double per_step = seconds_since(run_start) / static_cast<double>(step - first_step);
      log::info(str_cat("step ", step, "/", cfg.train.steps, " | reward ", reward_mean, " | acc ", accuracy, " | len ",
                        mean_len, " | ", static_cast<int64_t>(line["perf"]["tokens_per_second"].get<double>()),
                        " tok/s | ", step_time, " s/step | ETA ",
                        format_duration(per_step * static_cast<double>(cfg.train.steps - step))));
    }
    // A stop signal on any rank stops every rank after the same step.
    bool signalled = stop_requested();
    if (comm.distributed()) {
      at::Tensor flag = torch::tensor({signalled ? int64_t{1} : int64_t{0}}, torch::kLong);
      comm.all_reduce_sum(flag, "stop request");
      signalled = flag.item<int64_t>() > 0;
    }
    const bool stop_now = (opt.stop_after_step > 0 && step == opt.stop_after_step) || (signalled && !last);
    if (last || (cfg.checkpoint.every > 0 && step % cfg.checkpoint.every == 0) || stop_now) save(step);
    if (stop_now) {
      log::info(signalled ? str_cat("stop signal: stopped after step ", step, " with a checkpoint; continue with "
                                                                              "--resume latest")
                          : str_cat("stopping after step ", step, " (--stop-after-step)"));
      return 0;
    }
  }
  return 0;
}

}  // namespace anchor
