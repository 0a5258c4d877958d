// Decode-step kernels against the ATen ops they replace: bit-identical, not merely close.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "trainer/model/decode_kernels.h"

namespace anchor {
namespace {

at::Tensor rotate_half_reference(const at::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return torch::cat({-x.slice(-1, half), x.slice(-1, 0, half)}, -1);
}

TEST(DecodeKernels, RotateIntoCacheIsBitIdenticalToTheGenericOps) {
  const int64_t B = 5, H = 6, Hkv = 2, D = 16, capacity = 9, position = 4;
  torch::manual_seed(7);
  // The fused q/k/v GEMM output, as the packed decode path slices it: strided views.
  const at::Tensor qkv = torch::randn({B, 1, (H + 2 * Hkv) * D}) * 3;
  const at::Tensor q = qkv.slice(-1, 0, H * D).view({B, 1, H, D});
  const at::Tensor k = qkv.slice(-1, H * D, (H + Hkv) * D).view({B, 1, Hkv, D});
  const at::Tensor v = qkv.slice(-1, (H + Hkv) * D).view({B, 1, Hkv, D});
  // Rotary tables of different positions per row (left padding), as hidden_states builds them.
  const at::Tensor inv_freq = 1.0 / torch::pow(10000.0, torch::arange(0, D, 2).to(torch::kFloat) / D);
  const at::Tensor freqs = torch::tensor({3, 17, 250, 4095, 0}).to(torch::kFloat).view({B, 1, 1}) * inv_freq;
  const at::Tensor emb = torch::cat({freqs, freqs}, -1);
  const at::Tensor cos = emb.cos().unsqueeze(1), sin = emb.sin().unsqueeze(1);  // [B, 1, 1, D]
  at::Tensor keys = torch::randn({B, Hkv, capacity, D}), values = torch::randn({B, Hkv, capacity, D});
  const at::Tensor keys_before = keys.clone(), values_before = values.clone();

  const at::Tensor rotated_q = rotate_into_cache(q, k, v, cos, sin, keys, values, position);

  const at::Tensor qt = q.transpose(1, 2), kt = k.transpose(1, 2);
  const at::Tensor expected_q = qt * cos + rotate_half_reference(qt) * sin;
  const at::Tensor expected_k = kt * cos + rotate_half_reference(kt) * sin;
  EXPECT_EQ(rotated_q.sizes(), (std::vector<int64_t>{B, H, 1, D}));
  EXPECT_TRUE(torch::equal(rotated_q, expected_q));
  EXPECT_TRUE(torch::equal(keys.slice(2, position, position + 1), expected_k));
  EXPECT_TRUE(torch::equal(values.slice(2, position, position + 1), v.transpose(1, 2)));
  // Every other cache slot is untouched.
  for (int64_t p = 0; p < capacity; ++p) {
    if (p == position) continue;
    EXPECT_TRUE(torch::equal(keys.select(2, p), keys_before.select(2, p))) << "position " << p;
    EXPECT_TRUE(torch::equal(values.select(2, p), values_before.select(2, p))) << "position " << p;
  }
}

TEST(DecodeKernels, RefusesShapesItDoesNotHandle) {
  const at::Tensor q = torch::randn({2, 1, 4, 8}), k = torch::randn({2, 1, 2, 8});
  const at::Tensor cos = torch::randn({2, 1, 1, 8}), sin = torch::randn({2, 1, 1, 8});
  at::Tensor keys = torch::zeros({2, 2, 3, 8}), values = torch::zeros({2, 2, 3, 8});
  EXPECT_TRUE(decode_kernels_apply(q, cos));
  EXPECT_FALSE(decode_kernels_apply(torch::randn({2, 2, 4, 8}), cos));  // two new tokens
  EXPECT_FALSE(decode_kernels_apply(q.to(torch::kDouble), cos));
  EXPECT_THROW(rotate_into_cache(q, k, k, cos, sin, keys, values, 3), std::exception);  // cache full
  EXPECT_THROW(rotate_into_cache(q, k, k.slice(-1, 0, 4), cos, sin, keys, values, 0), std::exception);
}

}  // namespace
}  // namespace anchor
