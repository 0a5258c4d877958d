// Per-step metrics of a data-parallel step are sums over the global batch (rewards, tokens,
// clipped tokens, ...). Each stage adds its local sums by name; one all-reduce per step turns
// them into global sums, and the metrics line divides them.
#pragma once

#include <string>
#include <vector>

#include "trainer/distributed/communicator.h"

namespace anchor {

class MetricSums {
 public:
  // Adds `value` to the sum called `name` (created at 0 on first use; every rank must add
  // the same names in the same order).
  void add(const std::string& name, double value);
  // Sums every entry over ranks (one collective).
  void reduce(dist::Communicator& comm);
  // The (reduced) sum; 0 for a name never added.
  double operator[](const std::string& name) const;
  bool has(const std::string& name) const;

 private:
  std::vector<std::string> names_;
  std::vector<double> values_;
};

}  // namespace anchor
