// `anchor-rl sft CONFIG`: supervised fine-tuning (mode plain): next-token loss on the
// response (or on all tokens) of JSONL {prompt, response} rows, AdamW, the same run
// directory, checkpoints, resume and periodic evaluation as the RL trainer.
#pragma once

#include "trainer/rl/rl_trainer.h"

namespace anchor {

int run_sft_training(const TrainRunOptions& options);

}  // namespace anchor
