// `anchor-rl sft CONFIG`: supervised fine-tuning, sft.mode plain | conditional |
// context_indicator (trainer/sft/sft_data.h prepares each mode's examples): next-token loss on
// the targets (responses, assistant turns, texts; or every token), AdamW. The run's life (run
// directory, checkpoints, exact resume, non-finite skips, signals, periodic evaluation) is the
// one the RL trainer has: trainer/run/training_run.h.
#pragma once

#include "trainer/run/run_options.h"

namespace anchor {

int run_sft_training(const TrainRunOptions& options);

}  // namespace anchor
