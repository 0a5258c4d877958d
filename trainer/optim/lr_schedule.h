// Learning-rate schedule: linear warmup from 0, then constant or cosine decay to
// min_lr_ratio * lr at the last step. A pure function of the step, so resuming needs only
// the step number.
#pragma once

#include <cstdint>

#include "trainer/config/train_config.h"

namespace anchor {

// Learning rate for optimizer step `step` (0-based) of `total_steps`.
double learning_rate_at(int64_t step, int64_t total_steps, const OptimSection& optim);

}  // namespace anchor
