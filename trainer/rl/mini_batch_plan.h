// The optimizer steps of one RL step (stage 5): algo.ppo_epochs passes over the global batch,
// each cut into algo.mini_batches mini-batches (shuffled per epoch when there is more than
// one optimizer step). A data-parallel rank trains on the rows of each mini-batch it holds;
// the loss is normalised by the whole mini-batch's denominator, so the gradients summed over
// ranks equal one process's.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "trainer/algo/loss_aggregation.h"

namespace anchor {

struct MiniBatch {
  at::Tensor local_rows;  // [n] int64 indices into this rank's rows, ascending (n may be 0)
  double denominator = 0; // aggregation denominator of the global mini-batch
};

// global_mask [N, R]: response masks of the global batch; shard_rows [n]: the global rows this
// rank holds, ascending. Order of epoch e from derive_seed(seed, step, 1000 + e).
std::vector<MiniBatch> mini_batch_plan(const at::Tensor& global_mask, const at::Tensor& shard_rows, int64_t epochs,
                                       int64_t mini_batches, LossAggregation aggregation, uint64_t seed, int64_t step);

}  // namespace anchor
