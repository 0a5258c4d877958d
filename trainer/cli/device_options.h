// --device / --dtype / --threads, shared by every subcommand that runs a model.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

namespace CLI {
class App;
}

namespace anchor::cli {

struct DeviceOptions {
  std::string device = "cpu";   // cpu | cuda | cuda:N
  std::string dtype = "auto";   // auto (float32 on CPU, bfloat16 on CUDA) | float32 | bfloat16 | float16
  int threads = 0;              // 0 = LibTorch default (one per core)
};

void add_device_options(CLI::App& app, DeviceOptions& options);
// Sets the thread count and returns tensor options; an unusable device is an error.
at::TensorOptions resolve_device(const DeviceOptions& options);

}  // namespace anchor::cli
