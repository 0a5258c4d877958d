// The life of a training run, shared by `anchor-rl train` (RL) and `anchor-rl sft`; each
// trainer keeps only its step. In order:
//   TrainingRun(...)   config (validated, overrides applied), run directory (rank 0), the
//                      checkpoint to resume, this rank's device and threads, the policy loaded
//                      with fp32 master weights in its compute dtype
//   begin(...)         after the trainer has shaped the model (SFT adds tokens): rank 0's
//                      weights on every rank, AdamW at distributed.zero_stage and the data
//                      cursor, both restored when resuming, metrics.jsonl opened at the resumed
//                      step, step 0's evaluation
//   begin_step(step)   learning rate of the step, the step's clock, the metrics line's start
//   end_step(...)      non-finite skip accounting, perf, evaluation when due, the metrics line,
//                      the progress line, stop signals, checkpoints; false = stop now
// Before any weight is read, the memory plan (memory_plan.h) of this rank: logged, and a run
// that does not fit is refused on every rank, naming the settings that would make it fit
// (--ignore-memory-plan starts it anyway). Sampling chunks come from the plan.
// Signals: SIGTERM / SIGINT finish the current step, checkpoint and exit 0 (every rank stops
// after the same step). Non-finite values: the trainer reports the stage where a NaN / Inf
// appeared and applies no update; train.max_consecutive_skips in a row stop the run with the
// newest checkpoint intact.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "data/prompt_dataset.h"
#include "trainer/checkpoint/checkpoint.h"
#include "trainer/common/memory_phases.h"
#include "trainer/config/train_config.h"
#include "trainer/distributed/communicator.h"
#include "trainer/model/pretrained.h"
#include "trainer/optim/optimizer.h"
#include "trainer/rollout/evaluation.h"
#include "trainer/run/memory_plan.h"
#include "trainer/run/run_setup.h"

namespace anchor {

// What one step reports back to the run.
struct StepReport {
  nlohmann::json line;    // the metrics line: begin_step's fields plus the trainer's own
  std::string nonfinite;  // "" or the stage where a NaN / Inf appeared (no update was applied)
  std::string progress;   // the trainer's part of the progress line ("reward 0.41 | acc 0.30")
};

class TrainingRun {
 public:
  // `command` names the run in run.json and the log (train | sft).
  TrainingRun(const TrainRunOptions& options, ConfigUse use, const std::string& command, dist::Communicator& comm);
  ~TrainingRun();

  const TrainConfig& config() const { return start_.config; }
  dist::Communicator& comm() { return comm_; }
  bool writer() const { return comm_.rank() == 0; }  // rank 0 writes the run directory
  const at::TensorOptions& compute_options() const { return options_; }  // device + compute dtype
  Pretrained& policy() { return *policy_; }
  const MemoryPlan& memory_plan() const { return plan_; }
  // The step's memory phases (rollout, scoring, update; evaluation is the run's): each one's
  // peak lands in the metrics line as perf.peak_memory_mb_by_phase.
  void memory_phase(const std::string& name) { phases_->start(name); }
  // The run's starting point: model.path, --init-from or the resumed checkpoint.
  const std::string& weights_from() const { return start_.weights_from; }
  const std::string& run_path() const { return start_.config.logging.run_dir; }
  bool resuming() const { return !start_.checkpoint_dir.empty(); }
  // Checkpointed state: step, data position, and the trainer's own JSON in state().extra.
  TrainerState& state() { return start_.state; }

  // `dataset_size`: rows the data cursor walks; `evaluate(step)`: the metrics line's "eval"
  // object (null = no evaluation), called before the first step and when due;
  // `data_parallel_gradients`: the trainer's ranks train on different rows, so the optimizer
  // sums their gradients (RL); false: every rank computes the same update (SFT).
  void begin(size_t dataset_size, std::function<nlohmann::json(int64_t step)> evaluate,
             bool data_parallel_gradients);
  data::DataCursor& cursor() { return *cursor_; }
  Optimizer& optimizer() { return *optimizer_; }

  int64_t first_step() const { return first_step_; }  // the loop runs first_step() .. train.steps
  nlohmann::json begin_step(int64_t step);
  double seconds_in_step() const;  // since begin_step
  bool end_step(int64_t step, StepReport report);

 private:
  void check_memory_plan(ConfigUse use);
  // model.lora: fresh adapters on the loaded base, or the loaded adapters checked against it.
  void attach_adapters();
  void save(int64_t step);

  const TrainRunOptions options_in_;
  dist::Communicator& comm_;
  RunStart start_;
  at::TensorOptions options_;
  MemoryPlan plan_;
  std::optional<MemoryPhases> phases_;
  std::unique_ptr<Pretrained> policy_;
  std::optional<data::DataCursor> cursor_;
  std::unique_ptr<Optimizer> optimizer_;
  std::function<nlohmann::json(int64_t)> evaluate_;
  int64_t first_step_ = 1;
  std::chrono::steady_clock::time_point run_clock_, step_clock_, progress_clock_;
};

// Periodic evaluation inside a training run, configured by the run config (train.eval_*,
// rollout.*, data.eval_limit). Always draws the same sample stream, so evaluations at
// different steps differ only by the model. Logs and returns the metrics line's "eval" object.
// `batch_sequences`: rows per generate call (the memory plan's evaluation chunk; 0 = kMaxEvalRowsPerCall).
nlohmann::json evaluate_for_run(const Pretrained& policy, const data::PromptDataset& dataset,
                                const data::ChatTemplate& prompt_template, const rewards::CompositeReward& reward,
                                const TrainConfig& config, int64_t step, int64_t batch_sequences,
                                dist::Communicator* comm = nullptr);

// The optimizer step of a step whose gradients are in the optimizer's hands (the parameters'
// .grad, or at ZeRO stage 2 already this rank's slice): sums them over ranks, clips them to
// optim.grad_clip by the global norm (0 = no clipping) and steps — unless the norm is not
// finite, in which case the gradients are dropped and no update is applied. Returns the norm
// (the same on every rank); `nonfinite` is set to "loss" or "gradients" when it skipped.
double clip_and_step(Optimizer& optimizer, double grad_clip, int64_t step, double loss, std::string& nonfinite);

}  // namespace anchor
