#include "trainer/common/device.h"

#include <c10/cuda/CUDACachingAllocator.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <fstream>
#include <string>

#include "trainer/common/cuda_memory.h"
#include "trainer/common/error.h"
#include "trainer/common/test_hooks.h"

namespace anchor {

at::TensorOptions resolve_device(const std::string& name, const std::string& dtype_name, int64_t threads,
                                 const std::string& key) {
  const std::string dev_key = key == "-" ? "--device" : key + ".device";
  const std::string dtype_key = key == "-" ? "--dtype" : key + ".dtype";
  if (threads > 0) at::set_num_threads(static_cast<int>(threads));
  at::Device device(at::kCPU);
  try {
    device = at::Device(name);
  } catch (const std::exception&) {
    AR_FAIL(dev_key, ": '", name, "' is not a device (expected cpu, cuda or cuda:N)");
  }
  AR_CHECK(device.is_cpu() || device.is_cuda(), dev_key, ": only cpu and cuda are supported, got '", name, "'");
  if (device.is_cuda()) {
    AR_CHECK(torch::cuda::is_available(), dev_key, " ", name,
             ": CUDA is not available on this machine (no GPU or driver); use cpu");
    AR_CHECK(!device.has_index() || device.index() < static_cast<int>(torch::cuda::device_count()), dev_key, " ",
             name, ": only ", torch::cuda::device_count(), " CUDA device(s) present");
  }
  at::ScalarType dtype = at::kFloat;
  if (dtype_name == "auto") dtype = device.is_cuda() ? at::kBFloat16 : at::kFloat;
  else if (dtype_name == "bfloat16") dtype = at::kBFloat16;
  else if (dtype_name == "float16") dtype = at::kHalf;
  else AR_CHECK(dtype_name == "float32", dtype_key, ": '", dtype_name, "' is not one of auto, float32, bfloat16, float16");
  if (device.is_cpu() && dtype == at::kBFloat16 && !test_allows_cpu_bf16())
    AR_CHECK(cpu_has_native_bf16(), dtype_key,
             ": bfloat16 on this CPU would be several times slower than float32 (it has neither AVX512-BF16 nor "
             "AMX-BF16, so bf16 matmuls are emulated); use float32 (or auto, which is float32 on CPU)");
  if (device.is_cpu() && dtype == at::kHalf)
    AR_FAIL(dtype_key, ": float16 on CPU is emulated and slow; use float32 (or auto)");
  return torch::TensorOptions().device(device).dtype(dtype);
}

bool cpu_has_native_bf16() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    return line.find(" avx512_bf16") != std::string::npos || line.find(" amx_bf16") != std::string::npos;
  }
  return false;
}

double peak_host_memory_mb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return 0.0;
}

double peak_device_memory_mb(const at::Device& device) {
  if (!device.is_cuda()) return 0.0;
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.has_index() ? device.index() : 0);
  const auto& peak = stats.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)].peak;
  return static_cast<double>(peak) / (1024.0 * 1024.0);
}

namespace {
int64_t meminfo_bytes(const std::string& key) {
  std::ifstream meminfo("/proc/meminfo");
  std::string line;
  while (std::getline(meminfo, line))
    if (line.rfind(key + ":", 0) == 0) return std::stoll(line.substr(key.size() + 1)) * 1024;  // kB
  return 0;
}
}  // namespace

DeviceMemory device_memory(const std::string& name, int64_t ranks_per_node) {
  DeviceMemory d;
  if (name.rfind("cuda", 0) == 0) {
    const int index = name.size() > 5 ? std::stoi(name.substr(5)) : 0;
    d.bytes = torch::cuda::is_available() ? cuda_total_memory(index) : 0;
    d.description = str_cat("of ", name.size() > 5 ? name : std::string("cuda:0"));
    return d;
  }
  const int64_t ranks = std::max<int64_t>(1, ranks_per_node);
  d.bytes = meminfo_bytes("MemAvailable") / ranks;
  d.description = ranks > 1 ? str_cat("of available RAM (MemAvailable / ", ranks, " ranks)") : "of available RAM (MemAvailable)";
  return d;
}

int64_t current_host_memory_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  return 0;
}

}  // namespace anchor
