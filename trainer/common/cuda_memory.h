// Total memory of a CUDA device, from the CUDA runtime (cudaMemGetInfo). Its own file because
// it needs the CUDA headers, which only builds with NCCL / CUDA see (CMakeLists.txt).
#pragma once

#include <cstdint>

namespace anchor {

// Bytes of device `index` (0 when this build has no CUDA or the device cannot be queried).
int64_t cuda_total_memory(int index);

}  // namespace anchor
