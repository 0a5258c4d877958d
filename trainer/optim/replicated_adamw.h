// ZeRO stage 0 (optimizer.h): torch::optim::AdamW on every rank, gradients all-reduced in flat
// buckets, torch's clip_grad_norm_. Unchanged from the trainers before sharding existed.
#pragma once

#include <memory>

#include "trainer/optim/optimizer.h"

namespace anchor {

std::unique_ptr<Optimizer> make_replicated_adamw(const std::vector<at::Tensor>& parameters,
                                                 const std::vector<std::string>& names, const AdamWSettings& settings,
                                                 dist::Communicator* comm);

}  // namespace anchor
