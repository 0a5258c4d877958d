#include "trainer/model/decode_weights.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/torch.h>

#include <optional>

#include "trainer/common/error.h"

namespace anchor {
namespace {

using ReorderFn = at::Tensor(const at::Tensor&, std::optional<int64_t>);
using LinearFn = at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&, c10::string_view,
                            c10::List<std::optional<at::Scalar>>, std::optional<c10::string_view>);

std::optional<c10::OperatorHandle> find_op(const char* name) {
  return c10::Dispatcher::singleton().findSchema({name, ""});
}

}  // namespace

bool packed_linear_available() {
  static const bool available = find_op("mkldnn::_reorder_linear_weight").has_value() &&
                                find_op("mkldnn::_linear_pointwise").has_value() && at::hasMKLDNN();
  return available;
}

PackedLinear pack_linear(const at::Tensor& weight, const at::Tensor& bias, int64_t batch_hint) {
  AR_CHECK(packed_linear_available(), "pack_linear: this LibTorch has no oneDNN (mkldnn) linear ops");
  AR_CHECK(weight.dim() == 2 && weight.device().is_cpu() && weight.scalar_type() == at::kFloat,
           "pack_linear: expected a float32 CPU matrix, got ", weight.sizes(), " ", weight.scalar_type());
  static const auto reorder = find_op("mkldnn::_reorder_linear_weight")->typed<ReorderFn>();
  PackedLinear p;
  p.weight = reorder.call(weight.detach().contiguous(), std::max<int64_t>(1, batch_hint));
  if (bias.defined()) p.bias = bias.detach().contiguous();
  p.out_features = weight.size(0);
  return p;
}

at::Tensor packed_linear(const at::Tensor& x, const PackedLinear& p) {
  static const auto linear = find_op("mkldnn::_linear_pointwise")->typed<LinearFn>();
  const std::optional<at::Tensor> bias = p.bias.defined() ? std::optional<at::Tensor>(p.bias) : std::nullopt;
  return linear.call(x.contiguous(), p.weight, bias, "none", c10::List<std::optional<at::Scalar>>(), std::nullopt);
}

}  // namespace anchor
