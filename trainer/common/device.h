// Device / dtype / thread settings shared by the CLI options and the config's model section.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

namespace anchor {

// device: cpu | cuda | cuda:N; dtype: auto (float32 on CPU, bfloat16 on CUDA) | float32 |
// bfloat16 | float16; threads: CPU threads (0 = LibTorch default). `key` prefixes errors
// (e.g. "model" -> "model.device: ..."; "-" -> "--device: ...").
at::TensorOptions resolve_device(const std::string& device, const std::string& dtype, int64_t threads,
                                 const std::string& key);

}  // namespace anchor
