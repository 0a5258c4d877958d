#include "trainer/common/device.h"

#include <torch/cuda.h>
#include <torch/torch.h>

#include "trainer/common/error.h"

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
  return torch::TensorOptions().device(device).dtype(dtype);
}

}  // namespace anchor
