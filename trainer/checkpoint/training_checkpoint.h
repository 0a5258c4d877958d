// Full training state in a checkpoint: model + tokenizer (HF files), AdamW moments and
// TrainerState. Shared by `anchor-rl train` and `anchor-rl sft`.
//
// Random state: the trainers keep no generator between steps. Every random draw comes from a
// generator seeded from (train.seed, step, stream) — rollout sampling, PPO mini-batch
// shuffles — or from (train.seed, epoch) for the data order, so the step number and the data
// cursor in TrainerState are the complete random state of a run.
#pragma once

#include <string>

#include "trainer/checkpoint/checkpoint.h"
#include "trainer/optim/optimizer.h"

namespace anchor {

// `optimizer_state`: Optimizer::state_tensors(), gathered on every rank, written by the caller's
// rank 0.
std::string save_training_checkpoint(const std::string& run_dir, const TrainerState& state, const Pretrained& policy,
                                     const NamedTensors& optimizer_state, int64_t keep_last);

// Restores the optimizer moments saved by save_training_checkpoint (the model weights are
// loaded from the same directory by load_pretrained).
void restore_training_checkpoint(const std::string& checkpoint_dir, Optimizer& optimizer);

}  // namespace anchor
