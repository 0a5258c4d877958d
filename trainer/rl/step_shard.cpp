#include "trainer/rl/step_shard.h"

#include <torch/torch.h>

namespace anchor {

StepShard shard_step(int64_t groups, int64_t G, int rank, int size, dist::Communicator* comm) {
  StepShard s;
  if (size <= 1 || groups < size) {
    s.rows = torch::arange(groups * G, torch::kLong);
    s.replicated = size > 1;
    return s;
  }
  const auto [first, last] = dist::shard_range(groups, rank, size);
  s.rows = torch::arange(first * G, last * G, torch::kLong);
  s.sum = comm;
  return s;
}

}  // namespace anchor
