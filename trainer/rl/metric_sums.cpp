#include "trainer/rl/metric_sums.h"

#include <torch/torch.h>

#include <algorithm>

namespace anchor {

void MetricSums::add(const std::string& name, double value) {
  const auto it = std::find(names_.begin(), names_.end(), name);
  if (it != names_.end()) {
    values_[static_cast<size_t>(it - names_.begin())] += value;
    return;
  }
  names_.push_back(name);
  values_.push_back(value);
}

void MetricSums::reduce(dist::Communicator& comm) {
  if (!comm.distributed() || values_.empty()) return;
  at::Tensor t = torch::tensor(values_, torch::kDouble);
  comm.all_reduce_sum(t, "step metrics");
  const double* v = t.data_ptr<double>();
  values_.assign(v, v + t.numel());
}

double MetricSums::operator[](const std::string& name) const {
  const auto it = std::find(names_.begin(), names_.end(), name);
  return it == names_.end() ? 0.0 : values_[static_cast<size_t>(it - names_.begin())];
}

bool MetricSums::has(const std::string& name) const {
  return std::find(names_.begin(), names_.end(), name) != names_.end();
}

}  // namespace anchor
