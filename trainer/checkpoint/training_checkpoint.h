// Full training state in a checkpoint: model + tokenizer (HF files), AdamW moments, the CPU
// generator state, and TrainerState. Shared by `anchor-rl train` and `anchor-rl sft`.
#pragma once

#include <torch/optim/adamw.h>

#include <string>

#include "trainer/checkpoint/checkpoint.h"

namespace anchor {

std::string save_training_checkpoint(const std::string& run_dir, const TrainerState& state, const Pretrained& policy,
                                     torch::optim::AdamW& optimizer, int64_t keep_last);

// Restores optimizer moments and generator state saved by save_training_checkpoint (the
// model weights are loaded from the same directory by load_pretrained).
void restore_training_checkpoint(const std::string& checkpoint_dir, const Pretrained& policy,
                                 torch::optim::AdamW& optimizer);

}  // namespace anchor
