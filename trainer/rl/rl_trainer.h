// `anchor-rl train`: the RL fine-tuning loop (DESIGN 2). One step reads top to bottom:
//   rollout -> score -> old / reference logprobs -> advantages -> PPO update -> metrics,
// with checkpoints every N steps for exact resume.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace anchor {

struct TrainRunOptions {
  std::string config_path;
  std::vector<std::string> overrides;  // --set section.key=value
  std::string resume;                  // "" | latest | checkpoint dir: full state
  std::string init_from;               // "" | model dir: weights only, fresh optimizer and step 0
  std::string run_dir;                 // overrides logging.run_dir
  int64_t stop_after_step = 0;         // stop as if killed after this step (tests of resume)
};

// Returns the process exit code.
int run_rl_training(const TrainRunOptions& options);

}  // namespace anchor
