#include "trainer/cli/device_options.h"

#include <CLI/CLI.hpp>
#include "trainer/common/device.h"

namespace anchor::cli {

void add_device_options(CLI::App& app, DeviceOptions& o) {
  app.add_option("--device", o.device, "cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--dtype", o.dtype, "Weights/compute dtype")
      ->check(CLI::IsMember({"auto", "float32", "bfloat16", "float16"}))
      ->capture_default_str();
  app.add_option("--threads", o.threads, "CPU threads (0 = one per core)")->check(CLI::NonNegativeNumber);
}

at::TensorOptions resolve_device(const DeviceOptions& o) {
  return anchor::resolve_device(o.device, o.dtype, o.threads, "-");
}

}  // namespace anchor::cli
