#include "trainer/algo/loss_aggregation.h"

#include <torch/torch.h>

#include "trainer/common/error.h"

namespace anchor {

double aggregation_denominator(LossAggregation mode, const at::Tensor& valid_mask) {
  if (mode == LossAggregation::token_mean) return valid_mask.sum().item<double>();
  return static_cast<double>(valid_mask.size(0));
}

at::Tensor aggregate_loss(const at::Tensor& values, const at::Tensor& valid_mask, LossAggregation mode,
                          double global_denominator, int64_t norm_length) {
  AR_CHECK(values.sizes() == valid_mask.sizes(), "aggregate_loss: values ", values.sizes(), " and valid_mask ",
           valid_mask.sizes(), " differ in shape");
  AR_CHECK(global_denominator > 0, "aggregate_loss: the global denominator must be positive, got ",
           global_denominator);
  at::Tensor masked = values * valid_mask.to(values.scalar_type());
  switch (mode) {
    case LossAggregation::token_mean:
      return masked.sum() / global_denominator;
    case LossAggregation::seq_mean_token_mean: {
      at::Tensor lengths = valid_mask.sum(1).clamp_min(1).to(values.scalar_type());
      return (masked.sum(1) / lengths).sum() / global_denominator;
    }
    case LossAggregation::seq_mean_token_sum_norm:
      AR_CHECK(norm_length > 0, "aggregate_loss: seq_mean_token_sum_norm needs a positive norm_length");
      return masked.sum() / (global_denominator * static_cast<double>(norm_length));
  }
  AR_FAIL("aggregate_loss: unknown mode");
}

}  // namespace anchor
