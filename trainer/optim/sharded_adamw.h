// ZeRO stages 1 and 2 (optimizer.h): AdamW on this rank's slice of the flat parameter buffer.
//
// The flat buffer is the parameters in model order, each flattened; rank r owns
// shard_range(total, r, world) of it. Collectives run bucket by bucket (parameter_sync.h's
// bucket size), so the transient buffers stay small whatever the model. The update is
// torch::optim::AdamW's, op for op on the slice (decoupled weight decay, bias corrections from
// the step count), so one rank at stage 1 equals stage 0 bit for bit.
#pragma once

#include <memory>

#include "trainer/optim/optimizer.h"

namespace anchor {

std::unique_ptr<Optimizer> make_sharded_adamw(const std::vector<at::Tensor>& parameters,
                                              const std::vector<std::string>& names, const AdamWSettings& settings,
                                              int zero_stage, dist::Communicator* comm);

}  // namespace anchor
