// The memory plan of a run from the files it will read (trainer/run/memory_plan.h): the
// config.json of the weights it starts from, and, for the sequence length, the tokenizer and
// the data (the longest rendered prompt; no weights are read). Shared by `anchor-rl plan` and
// the start of `train` / `sft`, which refuse a run that does not fit before loading weights.
#pragma once

#include <cstdint>
#include <string>

#include "trainer/run/memory_plan.h"

namespace anchor {

struct PlanRequest {
  int64_t world_size = 1;
  int64_t ranks_per_node = 1;   // CPU: the node's available memory is shared by its ranks
  std::string device_memory;    // "" = this machine's (CPU: MemAvailable; CUDA: the GPU's total)
  int64_t prompt_tokens = 0;    // 0 = measured from the data (or data.max_prompt_tokens)
  int64_t runtime_bytes = -1;   // this process so far (-1 = the plan's estimate)
};

// `model_dir`: the directory the weights come from (model.path, --init-from or a checkpoint);
// only its config.json is required. The sequence length: PlanRequest::prompt_tokens, else the
// longest rendered prompt of data.train / data.eval (RL) or the longest example (SFT) when the
// tokenizer is there, else data.max_prompt_tokens; an error naming the three otherwise.
MemoryPlanInputs run_memory_plan_inputs(const TrainConfig& config, ConfigUse use, const std::string& model_dir,
                                        const PlanRequest& request);

}  // namespace anchor
