// The loss aggregation modes (algo.loss_agg), torch-free so that the config can parse them.
#pragma once

#include <utility>

#include "trainer/common/enum_names.h"

namespace anchor {

enum class LossAggregation {
  token_mean,               // sum(values) / global valid tokens
  seq_mean_token_mean,      // sum_i mean_t(values_i) / global sequences
  seq_mean_token_sum_norm,  // sum(values) / (global sequences * norm_length)  (Dr. GRPO)
};

template <>
struct EnumNames<LossAggregation> {
  using E = LossAggregation;
  static constexpr std::pair<E, const char*> values[] = {{E::token_mean, "token_mean"},
                                                         {E::seq_mean_token_mean, "seq_mean_token_mean"},
                                                         {E::seq_mean_token_sum_norm, "seq_mean_token_sum_norm"}};
};

}  // namespace anchor
