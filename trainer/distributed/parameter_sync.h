// Keeping data-parallel replicas identical: weights broadcast from rank 0 at the start, and the
// accumulated gradients summed over ranks at each optimizer step, packed into flat buckets so
// that a model of any size costs a few large collectives (not one call per tensor).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "trainer/distributed/communicator.h"

namespace anchor::dist {

// Elements per flat bucket (fp32: 64 MB).
constexpr int64_t kBucketElements = int64_t{16} << 20;

// Consecutive runs [first, last) of `tensors` (same device and dtype) packed into buckets of at
// most `bucket_elements` (a larger tensor gets a bucket of its own): the unit of every bucketed
// collective (this file's, and the sharded optimizer's reduce-scatter and all-gather).
std::vector<std::pair<size_t, size_t>> bucket_ranges(const std::vector<at::Tensor>& tensors,
                                                     int64_t bucket_elements = kBucketElements);

// Sums every parameter's .grad over ranks, in place (undefined gradients count as zeros and
// become defined). Returns the number of collectives issued.
int64_t all_reduce_gradients(const std::vector<at::Tensor>& parameters, Communicator& comm,
                             int64_t bucket_elements = kBucketElements);

// Overwrites every parameter with rank 0's values.
void broadcast_parameters(const std::vector<at::Tensor>& parameters, Communicator& comm,
                          int64_t bucket_elements = kBucketElements);

}  // namespace anchor::dist
