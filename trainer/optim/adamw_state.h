// AdamW (torch::optim::AdamW) state <-> named tensors, so that optimizer state is saved in
// safetensors next to the model (no pickle) and a resumed run continues bit-exactly.
#pragma once

#include <torch/optim/adamw.h>

#include <string>
#include <utility>
#include <vector>

#include "trainer/model/safetensors.h"

namespace anchor {

// For each parameter "name" with state: "name.exp_avg", "name.exp_avg_sq" and "name.step"
// (int64 scalar). Parameters without state (never stepped) are skipped.
NamedTensors adamw_state_tensors(torch::optim::AdamW& optimizer, const NamedTensors& parameters);

// Restores what adamw_state_tensors wrote; a missing or mis-shaped entry names the tensor.
void load_adamw_state(torch::optim::AdamW& optimizer, const NamedTensors& parameters,
                      const SafetensorsFile& file);

}  // namespace anchor
