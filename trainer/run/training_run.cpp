#include "trainer/run/training_run.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <thread>

#include "trainer/checkpoint/training_checkpoint.h"
#include "trainer/common/device.h"
#include "trainer/common/error.h"
#include "trainer/common/log.h"
#include "trainer/common/splitmix.h"
#include "trainer/common/stop_request.h"
#include "trainer/common/test_hooks.h"
#include "trainer/distributed/parameter_sync.h"
#include "trainer/optim/lr_schedule.h"
#include "trainer/run/run_memory_plan.h"

namespace anchor {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string format_duration(double seconds) {
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  return s >= 3600 ? str_cat(s / 3600, "h", (s % 3600) / 60, "m") : str_cat(s / 60, "m", s % 60, "s");
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

RunStart start_logged_run(const TrainRunOptions& opt, ConfigUse use, const std::string& command,
                          dist::Communicator& comm) {
  if (comm.rank() != 0) log::set_level(log::Level::warn);
  if (comm.distributed()) log::set_prefix(dist::rank_prefix());
  return start_run(opt, use, command, comm.rank() == 0);
}

}  // namespace

TrainingRun::TrainingRun(const TrainRunOptions& opt, ConfigUse use, const std::string& command,
                         dist::Communicator& comm)
    : options_in_(opt), comm_(comm), start_(start_logged_run(opt, use, command, comm)) {
  const TrainConfig& cfg = start_.config;
  comm_.set_timeout(cfg.distributed.timeout_seconds);
  if (comm_.distributed())
    log::info(str_cat("data parallel: ", comm_.size(), " ranks (", comm_.local_size(), " on this node)"));
  if (resuming() && start_.state.world_size != comm_.size())
    log::info(str_cat("resuming a checkpoint of world size ", start_.state.world_size, " with ", comm_.size(),
                      " ranks: the state is global (data position, seeds, optimizer), so the run continues as "
                      "one process would"));
  options_ = resolve_device(device_of_rank(cfg.model.device, comm_), cfg.model.dtype,
                            threads_per_rank(cfg.model.threads, comm_), "model");
  check_memory_plan(use);
  phases_.emplace(options_.device());
  // fp32 master weights; with mixed precision (bf16 on CUDA) every forward computes in the
  // compute dtype under autocast and AdamW updates the fp32 weights.
  policy_ = std::make_unique<Pretrained>(load_pretrained(start_.weights_from, options_.dtype(torch::kFloat)));
  attach_adapters();
  policy_->model.set_requires_grad(true);
  policy_->model.set_compute_dtype(options_.dtype().toScalarType());
  policy_->model.set_activation_checkpointing(cfg.model.activation_checkpointing);
}

TrainingRun::~TrainingRun() = default;

void TrainingRun::attach_adapters() {
  const LoraSection& lora = start_.config.model.lora;
  LlamaModel& model = policy_->model;
  if (!lora.enabled) {
    AR_CHECK(!model.has_lora(), start_.weights_from, " holds LoRA adapters (", kAdapterConfigFile,
             ") but model.lora.enabled is false: set it to go on training them, or merge them into a full model with "
             "`anchor-rl export --merge`");
    return;
  }
  const LoraSettings want = lora.settings();
  if (model.has_lora()) {  // resuming, or --init-from an adapter directory: its adapters go on training
    const LoraSettings& have = model.lora();
    AR_CHECK(have.rank == want.rank && have.alpha == want.alpha && have.targets == want.targets,
             "model.lora: the adapters in ", start_.weights_from, " have rank ", have.rank, ", alpha ", have.alpha,
             " and ", have.targets.size(), " target modules; the config asks for rank ", want.rank, ", alpha ",
             want.alpha, " and ", want.targets.size(), " (set model.lora to match, or start from the base model)");
  } else {
    add_adapters(*policy_, want, splitmix64_mix(start_.config.train.seed ^ 0x4c6f5241ull));  // "LoRA"
  }
  // The frozen base in the compute dtype (bf16 on CUDA: half the memory); adapters stay fp32.
  if (options_.dtype().toScalarType() != torch::kFloat) model.set_base_dtype(options_.dtype().toScalarType());
  int64_t adapter_parameters = 0;
  for (const auto& [_, t] : model.adapter_parameters()) adapter_parameters += t.numel();
  if (writer())
    log::info(str_cat("LoRA: rank ", want.rank, ", alpha ", want.alpha, " (scale ", want.scale(), "), dropout ",
                      want.dropout, ", ", want.targets.size(), " target modules per layer: ", adapter_parameters,
                      " trainable parameters (", 100.0 * static_cast<double>(adapter_parameters) /
                                                      static_cast<double>(model.num_parameters()),
                      "% of the base's ", model.num_parameters(), "); base model ", policy_->base_dir));
}

void TrainingRun::check_memory_plan(ConfigUse use) {
  TrainConfig cfg = start_.config;
  cfg.model.device = device_of_rank(cfg.model.device, comm_);
  PlanRequest request;
  request.world_size = comm_.size();
  request.ranks_per_node = comm_.local_size();
  if (options_.device().is_cpu()) request.runtime_bytes = current_host_memory_bytes();
  const MemoryPlanInputs inputs = run_memory_plan_inputs(cfg, use, start_.weights_from, request);
  plan_ = plan_memory(inputs);
  if (writer()) log::info(format_memory_plan(plan_));
  const std::string refusal = memory_plan_refusal(inputs, plan_);
  // Every rank refuses together (one rank alone would leave the others waiting in a collective).
  at::Tensor refused = torch::tensor({refusal.empty() ? int64_t{0} : int64_t{1}}, torch::kLong);
  if (comm_.distributed()) comm_.all_reduce_sum(refused, "memory plan");
  if (refused.item<int64_t>() == 0) return;
  const std::string why = refusal.empty() ? "another rank's memory plan does not fit (see its error)" : refusal;
  if (options_in_.ignore_memory_plan) {
    log::warn(str_cat(why, " Starting anyway (--ignore-memory-plan)."));
    return;
  }
  AR_FAIL(why, " (--ignore-memory-plan starts it anyway; `anchor-rl plan` shows the plan)");
}

void TrainingRun::begin(size_t dataset_size, std::function<nlohmann::json(int64_t)> evaluate,
                        bool data_parallel_gradients) {
  const TrainConfig& cfg = start_.config;
  TrainerState& state = start_.state;
  evaluate_ = std::move(evaluate);
  cursor_.emplace(dataset_size, cfg.train.seed, cfg.data.shuffle);
  // Every rank starts from rank 0's weights (the optimizer state is restored from the same
  // files); before the optimizer exists, because stages 1 and 2 copy their master slice.
  // With LoRA only the adapters (every rank reads the same base model, checked by its fingerprint).
  std::vector<at::Tensor> parameters;
  std::vector<std::string> names;
  for (const auto& [name, p] : policy_->model.trainable_parameters()) {
    names.push_back(name);
    parameters.push_back(p);
  }
  dist::broadcast_parameters(parameters, comm_);
  const OptimSection& o = cfg.optim;
  optimizer_ = make_optimizer(parameters, names, AdamWSettings{o.lr, o.beta1, o.beta2, o.eps, o.weight_decay},
                              static_cast<int>(cfg.distributed.zero_stage), data_parallel_gradients ? &comm_ : nullptr);
  if (comm_.distributed() || cfg.distributed.zero_stage > 0) log::info(optimizer_->description());
  if (writer()) {
    int64_t elements = 0;
    for (const at::Tensor& p : parameters) elements += p.numel();
    log::info(str_cat("optimizer: AdamW over ", parameters.size(), " tensors, ", elements,
                      " trainable parameters; moments ", optimizer_->moment_bytes(), " bytes on this rank"));
  }
  if (comm_.distributed()) {
    const at::Tensor bytes = comm_.all_gather(torch::tensor({optimizer_->moment_bytes()}, torch::kLong), "optimizer size");
    std::string list;
    for (int64_t r = 0; r < bytes.numel(); ++r) list += (r ? ", " : "") + std::to_string(bytes[r].item<int64_t>());
    log::info(str_cat("AdamW moments per rank (bytes): [", list, "]"));
  }
  if (resuming()) {
    cursor_->restore(state.data_epoch, state.data_position);
    restore_training_checkpoint(start_.checkpoint_dir, *optimizer_);
    log::info(str_cat("resumed from ", start_.checkpoint_dir, " at step ", state.step));
  }
  if (writer()) start_.run->open_metrics(state.step);
  if (state.step == 0) {
    nlohmann::json line = {{"step", 0}};
    if (options_in_.skip_start_eval) line["eval_skipped"] = true;
    else {
      phases_->start("evaluation");
      if (nlohmann::json e = evaluate_(0); !e.is_null()) line["eval"] = std::move(e);
      // Its peak stays out of step 1's phases (step 0's line has no perf: it is not a step).
      phases_->take_host_peaks();
      phases_->take_device_peaks();
    }
    if (writer()) start_.run->write_metrics(line);
  }
  install_stop_handlers();
  first_step_ = state.step + 1;
  run_clock_ = Clock::now();
  progress_clock_ = run_clock_ - std::chrono::seconds(1);
  comm_.take_comm_seconds();
}

nlohmann::json TrainingRun::begin_step(int64_t step) {
  step_clock_ = Clock::now();
  const double lr = learning_rate_at(step - 1, start_.config.train.steps, start_.config.optim);
  optimizer_->set_learning_rate(lr);
  // LoRA dropout draws from the default generators: seeded from (seed, step, rank), so that a
  // resumed run draws the masks it would have drawn.
  if (policy_->model.has_lora() && policy_->model.lora().dropout > 0)
    torch::manual_seed(splitmix64_mix(splitmix64_mix(start_.config.train.seed ^ 0x44524f50ull) + static_cast<uint64_t>(step)) +
                       static_cast<uint64_t>(comm_.rank()));
  return {{"step", step}, {"lr", lr}};
}

double TrainingRun::seconds_in_step() const { return seconds_since(step_clock_); }

bool TrainingRun::end_step(int64_t step, StepReport report) {
  const TrainConfig& cfg = start_.config;
  nlohmann::json& line = report.line;
  const std::string& nonfinite = report.nonfinite;
  line["epoch"] = cursor_->epoch();

  // Non-finite values: counted, and too many in a row stop the run (after its metrics line).
  nlohmann::json& extra = start_.state.extra;
  int64_t skipped_total = extra.value("skipped_steps", int64_t{0});
  int64_t skipped_in_a_row = extra.value("consecutive_skips", int64_t{0});
  if (!nonfinite.empty()) {
    ++skipped_total;
    ++skipped_in_a_row;
    line["skipped"] = nonfinite;
    log::warn(str_cat("step ", step, ": non-finite value in the ", nonfinite, " (NaN or Inf); optimizer step skipped (",
                      skipped_in_a_row, " in a row, at most ", cfg.train.max_consecutive_skips, ")"));
  } else {
    skipped_in_a_row = 0;
  }
  extra["skipped_steps"] = skipped_total;
  extra["consecutive_skips"] = skipped_in_a_row;
  line["skipped_steps"] = skipped_total;

  const double step_time = seconds_since(step_clock_);
  nlohmann::json& perf = line["perf"];
  perf["step_seconds"] = step_time;
  perf["comm_seconds"] = comm_.take_comm_seconds();
  perf["world_size"] = comm_.size();

  const bool last = step == cfg.train.steps;
  if ((cfg.train.eval_every > 0 && step % cfg.train.eval_every == 0) || last) {
    phases_->start("evaluation");
    if (nlohmann::json e = evaluate_(step); !e.is_null()) line["eval"] = std::move(e);
  }
  // Peaks: the process's so far, and each phase's of this step (to set beside the memory plan).
  perf["peak_memory_mb"] = phases_->lifetime_host_peak_mb();
  perf["peak_gpu_memory_mb"] = phases_->lifetime_device_peak_mb();
  if (auto host = phases_->take_host_peaks(); !host.empty()) perf["peak_memory_mb_by_phase"] = host;
  if (auto gpu = phases_->take_device_peaks(); !gpu.empty()) perf["peak_gpu_memory_mb_by_phase"] = gpu;
  if (comm_.distributed()) {  // every rank's peaks (sharding makes them differ)
    const at::Tensor mine = torch::tensor({perf["peak_memory_mb"].get<double>(), perf["peak_gpu_memory_mb"].get<double>()},
                                          torch::kDouble);
    const at::Tensor all = comm_.all_gather(mine, "peak memory").view({-1, 2});
    const at::Tensor gpu = all.select(1, 1).contiguous(), host = all.select(1, 0).contiguous();
    perf["peak_memory_mb_per_rank"] = std::vector<double>(host.data_ptr<double>(), host.data_ptr<double>() + host.numel());
    perf["peak_gpu_memory_mb_per_rank"] = std::vector<double>(gpu.data_ptr<double>(), gpu.data_ptr<double>() + gpu.numel());
  }
  if (writer()) start_.run->write_metrics(line);
  AR_CHECK(skipped_in_a_row < cfg.train.max_consecutive_skips, "step ", step, ": ", skipped_in_a_row,
           " consecutive steps with non-finite values (last in the ", nonfinite,
           "; train.max_consecutive_skips); stopping. The weights were never updated with them: the newest "
           "checkpoint in ", cfg.logging.run_dir, "/checkpoints is intact (resume with --resume latest after fixing "
           "the cause)");
  // The progress line: every step, or once a second when steps are faster than that (SFT).
  if (cfg.logging.progress && writer() && (last || seconds_since(progress_clock_) >= 1.0)) {
    progress_clock_ = Clock::now();
    const double per_step = seconds_since(run_clock_) / static_cast<double>(step - first_step_ + 1);
    log::info(str_cat("step ", step, "/", cfg.train.steps, " | ", report.progress, " | ", step_time, " s/step | ETA ",
                      format_duration(per_step * static_cast<double>(cfg.train.steps - step))));
  }

  // A stop signal on any rank stops every rank after the same step.
  bool signalled = stop_requested();
  if (comm_.distributed()) {
    at::Tensor flag = torch::tensor({signalled ? int64_t{1} : int64_t{0}}, torch::kLong);
    comm_.all_reduce_sum(flag, "stop request");
    signalled = flag.item<int64_t>() > 0;
  }
  const bool stop_now = (options_in_.stop_after_step > 0 && step == options_in_.stop_after_step) || (signalled && !last);
  if (last || (cfg.checkpoint.every > 0 && step % cfg.checkpoint.every == 0) || stop_now) save(step);
  if (stop_now)
    log::info(signalled ? str_cat("stop signal: stopped after step ", step,
                                  " with a checkpoint; continue with --resume latest")
                        : str_cat("stopping after step ", step, " (--stop-after-step)"));
  return !stop_now;
}

void TrainingRun::save(int64_t step) {
  TrainerState& state = start_.state;
  state.step = step;
  state.data_epoch = cursor_->epoch();
  state.data_position = cursor_->position();
  state.config_hash = start_.config_hash;
  state.world_size = comm_.size();
  // Every rank has finished the step; rank 0 writes (DONE last), the others wait for it.
  comm_.barrier("checkpoint (before)");
  const NamedTensors optimizer_state = optimizer_->state_tensors();  // a collective when sharded
  if (writer()) {
    const std::string path = save_training_checkpoint(start_.config.logging.run_dir, state, *policy_, optimizer_state,
                                                      start_.config.checkpoint.keep_last);
    log::info(str_cat("checkpoint ", path));
  }
  comm_.barrier("checkpoint (written)");
}

nlohmann::json evaluate_for_run(const Pretrained& policy, const data::PromptDataset& dataset,
                                const data::ChatTemplate& prompt_template, const rewards::CompositeReward& reward,
                                const TrainConfig& cfg, int64_t step, int64_t batch_sequences,
                                dist::Communicator* comm) {
  torch::NoGradGuard no_grad;
  EvalOptions eo;
  eo.samples_per_prompt = cfg.train.eval_samples;
  eo.temperature = cfg.train.eval_temperature;
  eo.top_p = cfg.rollout.top_p;
  eo.max_new_tokens = cfg.rollout.max_new_tokens;
  eo.stop = cfg.rollout.stop;
  eo.seed = cfg.train.seed + 1;
  eo.limit = cfg.data.eval_limit;
  eo.comm = comm;
  if (batch_sequences > 0) eo.batch_sequences = batch_sequences;
  eo.control = generation_control(cfg.rollout.control, cfg.rollout.indicator, policy.tokenizer, "rollout.control",
                                       "rollout.indicator");
  const auto start = std::chrono::steady_clock::now();
  const EvalResult r = evaluate(policy.model, policy.tokenizer, dataset, prompt_template, reward, eo);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  log::info(str_cat("eval @ step ", step, ": accuracy ", r.accuracy, " +- ", r.accuracy_stderr, " (", r.samples,
                    " samples), pass@", eo.samples_per_prompt, " ", r.pass_at_k, ", ", seconds, " s"));
  return {{"accuracy", r.accuracy}, {"accuracy_stderr", r.accuracy_stderr}, {"pass_at_k", r.pass_at_k},
          {"k", eo.samples_per_prompt}, {"mean_reward", r.mean_reward}, {"samples", r.samples},
          {"mean_response_tokens", r.mean_response_tokens}};
}

double clip_and_step(Optimizer& optimizer, double grad_clip, int64_t step, double loss, std::string& nonfinite) {
  if (test_poisoned(step, "gradient")) optimizer.poison_gradients();
  const double norm = optimizer.reduce_and_clip(grad_clip);
  if (!std::isfinite(norm)) {
    nonfinite = std::isfinite(loss) ? "gradients" : "loss";
    optimizer.zero_grad();
    return norm;
  }
  optimizer.step();
  return norm;
}

}  // namespace anchor
