// Advantage estimators (docs/design.md §4): one scalar reward per completion in, one advantage per
// completion out. Completions come in groups of `group_size` samples of the same prompt,
// stored contiguously: rewards[g * group_size + i]. Pure functions; chosen by name through
// advantage_estimators() (config key algo.advantage).
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>

#include "trainer/common/registry.h"

namespace anchor {

struct AdvantageOptions {
  int64_t group_size = 1;
  bool normalize_std = true;  // grpo: divide by the group std (false = Dr. GRPO)
  double eps = 1e-6;          // added to standard deviations
};

// rewards [N] float -> advantages [N] float, N a multiple of group_size.
using AdvantageEstimator = std::function<at::Tensor(const at::Tensor& rewards, const AdvantageOptions&)>;

// grpo: (r - mean_group) / (std_group + eps), std unbiased (as verl); without the division
// when normalize_std is false (Dr. GRPO, Liu et al. 2025). Needs group_size >= 2.
at::Tensor grpo_advantages(const at::Tensor& rewards, const AdvantageOptions& options);
// rloo: r_i - mean of the other G-1 rewards of the group (Ahmadian et al. 2024).
at::Tensor rloo_advantages(const at::Tensor& rewards, const AdvantageOptions& options);
// reinforce_pp: (r - mean_batch) / (std_batch + eps) over the whole batch (REINFORCE++, Hu 2025).
at::Tensor reinforce_pp_advantages(const at::Tensor& rewards, const AdvantageOptions& options);
// reinforce: the reward itself, no baseline (Williams 1992).
at::Tensor reinforce_advantages(const at::Tensor& rewards, const AdvantageOptions& options);

const Registry<AdvantageEstimator>& advantage_estimators();

}  // namespace anchor
