// Peak memory per phase of a step (rollout, scoring, update, evaluation), to set beside the
// memory plan's phases (trainer/run/memory_plan.h). A phase starts by resetting the peaks:
// the process's resident-set high-water mark (writing 5 to /proc/self/clear_refs) and, on a
// GPU, the caching allocator's peak; its peak is read when the next phase starts. The process's
// lifetime peak is kept as the maximum over everything read, so perf.peak_memory_mb keeps its
// meaning.
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <string>

namespace anchor {

class MemoryPhases {
 public:
  explicit MemoryPhases(const at::Device& device) : device_(device) {}
  // Ends the current phase (if any) and starts `name`.
  void start(const std::string& name);
  // Ends the current phase; the peaks of every phase since the last call, in MB (host RSS and,
  // on CUDA, the allocator's), largest per name.
  std::map<std::string, double> take_host_peaks();
  std::map<std::string, double> take_device_peaks();
  double lifetime_host_peak_mb();
  double lifetime_device_peak_mb();

 private:
  void end_current();
  at::Device device_;
  std::string current_;
  bool resettable_ = true;
  double lifetime_host_ = 0, lifetime_device_ = 0;
  std::map<std::string, double> host_, device_peaks_;
};

}  // namespace anchor
