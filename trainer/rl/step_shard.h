// Which rows of the step's global batch this rank trains on: whole groups (group statistics
// stay on one rank), contiguous, shares differing by at most one group. With fewer kept groups
// than ranks every rank trains on the whole (small) batch and nothing is summed over ranks —
// the replicas still take identical steps.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "trainer/distributed/communicator.h"

namespace anchor {

struct StepShard {
  at::Tensor rows;                   // [n] int64 global row indices, ascending
  bool replicated = false;           // every rank holds every row
  dist::Communicator* sum = nullptr;  // sums over ranks (gradients, pooled statistics, metrics); nullptr: none needed
};

StepShard shard_step(int64_t groups, int64_t group_size, int rank, int size, dist::Communicator* comm);

}  // namespace anchor
