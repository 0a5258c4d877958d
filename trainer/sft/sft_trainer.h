// `anchor-rl sft CONFIG`: supervised fine-tuning, sft.mode plain | conditional |
// context_indicator (trainer/sft/sft_data.h prepares each mode's examples): next-token loss on
// the targets (responses, assistant turns, texts; or every token), AdamW, and the same run
// directory, checkpoints, exact resume, non-finite skips and periodic evaluation as the RL
// trainer.
#pragma once

#include "trainer/rl/rl_trainer.h"

namespace anchor {

int run_sft_training(const TrainRunOptions& options);

}  // namespace anchor
