#include "trainer/rl/mini_batch_plan.h"

#include <torch/torch.h>

#include "trainer/rl/step_seed.h"

namespace anchor {

std::vector<MiniBatch> mini_batch_plan(const at::Tensor& global_mask, const at::Tensor& shard_rows, int64_t epochs,
                                       int64_t mini_batches, LossAggregation aggregation, uint64_t seed, int64_t step) {
  const int64_t N = global_mask.size(0);
  // global row -> index among this rank's rows (-1: another rank's)
  at::Tensor local_of = torch::full({N}, -1, torch::kLong);
  local_of.index_put_({shard_rows}, torch::arange(shard_rows.size(0), torch::kLong));
  std::vector<MiniBatch> plan;
  const int64_t per_mini = N / mini_batches;
  for (int64_t epoch = 0; epoch < epochs; ++epoch) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(derive_seed(seed, step, 1000 + static_cast<uint64_t>(epoch)));
    const at::Tensor order = epochs * mini_batches > 1 ? torch::randperm(N, gen, torch::kLong) : torch::arange(N, torch::kLong);
    for (int64_t m = 0; per_mini > 0 && m + per_mini <= N; m += per_mini) {
      const at::Tensor rows = order.slice(0, m, m + per_mini);
      const at::Tensor local = local_of.index_select(0, rows);
      MiniBatch mb;
      // Ascending, so that a group's samples are adjacent and share micro-batches (and one
      // prompt encoding); the mini-batch's gradient is a sum, so order only moves rounding.
      mb.local_rows = std::get<0>(torch::sort(local.masked_select(local.ge(0))));
      mb.denominator = aggregation_denominator(aggregation, global_mask.index_select(0, rows));
      plan.push_back(mb);
    }
  }
  return plan;
}

}  // namespace anchor
