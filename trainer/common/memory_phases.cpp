#include "trainer/common/memory_phases.h"

#include <c10/cuda/CUDACachingAllocator.h>
#include <malloc.h>

#include <algorithm>
#include <fstream>

#include "trainer/common/device.h"

namespace anchor {
namespace {

// Resets VmHWM to the current resident set (Linux >= 4.0); false where not permitted.
bool reset_host_peak() {
  std::ofstream clear("/proc/self/clear_refs");
  if (!clear) return false;
  clear << "5";
  clear.flush();
  return static_cast<bool>(clear);
}

}  // namespace

void MemoryPhases::end_current() {
  const double host = peak_host_memory_mb();
  const double device = peak_device_memory_mb(device_);
  lifetime_host_ = std::max(lifetime_host_, host);
  lifetime_device_ = std::max(lifetime_device_, device);
  if (!current_.empty()) {
    host_[current_] = std::max(host_[current_], host);
    if (device_.is_cuda()) device_peaks_[current_] = std::max(device_peaks_[current_], device);
  }
  current_.clear();
}

void MemoryPhases::start(const std::string& name) {
  end_current();
  // glibc keeps the heap pages of freed tensors resident (they sit between live chunks, below
  // the top it trims): without this, the next phase's large tensors land beside them and
  // resident memory is the sum of phases, growing with fragmentation, not the largest phase.
  if (device_.is_cpu()) malloc_trim(0);
  if (resettable_) resettable_ = reset_host_peak();
  if (device_.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(device_.has_index() ? device_.index() : 0);
  current_ = name;
}

std::map<std::string, double> MemoryPhases::take_host_peaks() {
  end_current();
  std::map<std::string, double> out;
  if (resettable_) out.swap(host_);
  host_.clear();
  return out;
}

std::map<std::string, double> MemoryPhases::take_device_peaks() {
  end_current();
  std::map<std::string, double> out;
  out.swap(device_peaks_);
  return out;
}

double MemoryPhases::lifetime_host_peak_mb() {
  lifetime_host_ = std::max(lifetime_host_, peak_host_memory_mb());
  return lifetime_host_;
}

double MemoryPhases::lifetime_device_peak_mb() {
  lifetime_device_ = std::max(lifetime_device_, peak_device_memory_mb(device_));
  return lifetime_device_;
}

}  // namespace anchor
