#include "trainer/cli/device_options.h"

#include <CLI/CLI.hpp>
#include <torch/cuda.h>
#include <torch/torch.h>

#include "trainer/common/error.h"

namespace anchor::cli {

void add_device_options(CLI::App& app, DeviceOptions& o) {
  app.add_option("--device", o.device, "cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--dtype", o.dtype, "Weights/compute dtype")
      ->check(CLI::IsMember({"auto", "float32", "bfloat16", "float16"}))
      ->capture_default_str();
  app.add_option("--threads", o.threads, "CPU threads (0 = one per core)")->check(CLI::NonNegativeNumber);
}

at::TensorOptions resolve_device(const DeviceOptions& o) {
  if (o.threads > 0) at::set_num_threads(o.threads);
  at::Device device(at::kCPU);
  try {
    device = at::Device(o.device);
  } catch (const std::exception&) {
    AR_FAIL("--device: '", o.device, "' is not a device (expected cpu, cuda or cuda:N)");
  }
  AR_CHECK(device.is_cpu() || device.is_cuda(), "--device: only cpu and cuda are supported, got '", o.device, "'");
  if (device.is_cuda()) {
    AR_CHECK(torch::cuda::is_available(), "--device ", o.device,
             ": CUDA is not available on this machine (no GPU or driver); use --device cpu");
    AR_CHECK(!device.has_index() || device.index() < static_cast<int>(torch::cuda::device_count()), "--device ",
             o.device, ": only ", torch::cuda::device_count(), " CUDA device(s) present");
  }
  at::ScalarType dtype = at::kFloat;
  if (o.dtype == "auto") dtype = device.is_cuda() ? at::kBFloat16 : at::kFloat;
  else if (o.dtype == "bfloat16") dtype = at::kBFloat16;
  else if (o.dtype == "float16") dtype = at::kHalf;
  return torch::TensorOptions().device(device).dtype(dtype);
}

}  // namespace anchor::cli
