// What a user asks of a training command (`anchor-rl train` and `anchor-rl sft` share them).
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
  bool skip_start_eval = false;
  bool ignore_memory_plan = false;     // start even if the memory plan says the run does not fit        // no held-out evaluation of the starting weights (an ablation shares one)
};

}  // namespace anchor
