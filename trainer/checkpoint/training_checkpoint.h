// Full training state in a checkpoint: model + tokenizer (HF files), AdamW moments and
// TrainerState. Shared by `anchor-rl train` and `anchor-rl sft`.
//
// Random state: the trainers keep no generator between steps. Every random draw comes from a
// generator seeded from (train.seed, step, stream) — rollout sampling, PPO mini-batch
// shuffles — or from (train.seed, epoch) for the data order, so the step number and the data
// cursor in TrainerState are the complete random state of a run.
#pragma once

#include <torch/optim/adamw.h>

#include <string>

#include "trainer/checkpoint/checkpoint.h"

namespace anchor {

std::string save_training_checkpoint(const std::string& run_dir, const TrainerState& state, const Pretrained& policy,
                                     torch::optim::AdamW& optimizer, int64_t keep_last);

// Restores the optimizer moments saved by save_training_checkpoint (the model weights are
// loaded from the same directory by load_pretrained).
void restore_training_checkpoint(const std::string& checkpoint_dir, const Pretrained& policy,
                                 torch::optim::AdamW& optimizer);

}  // namespace anchor
