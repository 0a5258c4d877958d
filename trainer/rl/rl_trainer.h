// `anchor-rl train`: the RL fine-tuning loop (docs/design.md, "One RL step"). The run's life
// (config, run directory, checkpoints, resume, signals, non-finite skips, evaluation, the
// progress line) is trainer/run/training_run.h; this trainer owns only its step, which reads
// top to bottom: rollout -> score -> old / reference log-probs and the credit map ->
// advantages -> PPO update -> metrics.
#pragma once

#include "trainer/run/run_options.h"

namespace anchor {

// Returns the process exit code.
int run_rl_training(const TrainRunOptions& options);

}  // namespace anchor
