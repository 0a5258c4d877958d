// Device / dtype / thread settings shared by the CLI options and the config's model section.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

namespace anchor {

// device: cpu | cuda | cuda:N; dtype: auto (float32 on CPU, bfloat16 on CUDA) | float32 |
// bfloat16 | float16; threads: CPU threads (0 = LibTorch default). `key` prefixes errors
// (e.g. "model" -> "model.device: ..."; "-" -> "--device: ...").
at::TensorOptions resolve_device(const std::string& device, const std::string& dtype, int64_t threads,
                                 const std::string& key);

// Whether this CPU computes bf16 natively (AVX512-BF16 or AMX-BF16, from /proc/cpuinfo).
// Without it LibTorch emulates bf16 matmuls, ~4x slower than fp32, so bf16 on CPU is refused.
bool cpu_has_native_bf16();

// Peak memory allocated by LibTorch's caching allocator on a CUDA device since the process
// started, in MB (0 for CPU devices).
double peak_device_memory_mb(const at::Device& device);

// Memory one rank may use: on a CPU the node's MemAvailable (/proc/meminfo) shared by its
// `ranks_per_node` ranks; on a GPU its total memory (0 when CUDA is not available).
struct DeviceMemory {
  int64_t bytes = 0;
  std::string description;  // "of CPU RAM available (1 of 2 ranks)", "of cuda:0 (NVIDIA H100)"
};
DeviceMemory device_memory(const std::string& device, int64_t ranks_per_node);

// Resident memory of this process now, in bytes (VmRSS); 0 if unreadable.
int64_t current_host_memory_bytes();

// Peak resident memory of this process image in MB (VmHWM of /proc/self/status; getrusage's
// maximum survives exec and would report a parent's peak when that is larger). 0 if unreadable.
double peak_host_memory_mb();

}  // namespace anchor
