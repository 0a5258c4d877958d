#include "trainer/common/cuda_memory.h"

#ifdef ANCHOR_WITH_NCCL
#include <cuda_runtime_api.h>
#endif

namespace anchor {

int64_t cuda_total_memory(int index) {
#ifdef ANCHOR_WITH_NCCL
  int previous = 0;
  if (cudaGetDevice(&previous) != cudaSuccess) return 0;
  if (cudaSetDevice(index) != cudaSuccess) return 0;
  size_t free_bytes = 0, total_bytes = 0;
  const bool ok = cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess;
  cudaSetDevice(previous);
  return ok ? static_cast<int64_t>(total_bytes) : 0;
#else
  (void)index;
  return 0;
#endif
}

}  // namespace anchor
