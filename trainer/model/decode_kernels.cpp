#include "trainer/model/decode_kernels.h"

#include <ATen/ATen.h>

#include "trainer/common/error.h"

namespace anchor {

namespace {

// out = x * cos + rotate_half(x) * sin for one head, rotate_half(x) = [-x[h:], x[:h]]: each
// product rounded, then the sum, as the generic path's mul, mul, add.
inline void rotate_head(const float* x, const float* cos, const float* sin, float* out, int64_t D) {
  const int64_t half = D / 2;
  for (int64_t i = 0; i < half; ++i) {
    const float a = x[i] * cos[i];
    const float b = -x[i + half] * sin[i];
    out[i] = a + b;
  }
  for (int64_t i = half; i < D; ++i) {
    const float a = x[i] * cos[i];
    const float b = x[i - half] * sin[i];
    out[i] = a + b;
  }
}

}  // namespace

bool decode_kernels_apply(const at::Tensor& q, const at::Tensor& cos) {
  return q.device().is_cpu() && q.scalar_type() == at::kFloat && cos.scalar_type() == at::kFloat && q.dim() == 4 &&
         q.size(1) == 1 && q.size(-1) % 2 == 0;
}

at::Tensor rotate_into_cache(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& cos,
                             const at::Tensor& sin, at::Tensor& cache_keys, at::Tensor& cache_values, int64_t position) {
  const int64_t B = q.size(0), H = q.size(2), D = q.size(3), Hkv = k.size(2);
  AR_CHECK(decode_kernels_apply(q, cos) && k.sizes() == v.sizes() && k.size(0) == B && k.size(1) == 1 &&
               k.size(3) == D && q.stride(3) == 1 && k.stride(3) == 1 && v.stride(3) == 1,
           "rotate_into_cache: expected q [B, 1, H, D] and k, v [B, 1, Hkv, D] float32 with contiguous heads, got ",
           q.sizes(), ", ", k.sizes(), ", ", v.sizes());
  AR_CHECK(cos.is_contiguous() && sin.is_contiguous() && cos.numel() == B * D && sin.numel() == B * D,
           "rotate_into_cache: expected contiguous cos and sin [B, 1, 1, D], got ", cos.sizes(), " and ", sin.sizes());
  AR_CHECK(cache_keys.is_contiguous() && cache_values.is_contiguous() && cache_keys.size(0) == B &&
               cache_keys.size(1) == Hkv && cache_keys.size(3) == D && cache_values.sizes() == cache_keys.sizes() &&
               position >= 0 && position < cache_keys.size(2),
           "rotate_into_cache: cache [", B, ", ", Hkv, ", capacity, ", D, "] with room at position ", position,
           " expected, got ", cache_keys.sizes());
  at::Tensor out = at::empty({B, H, 1, D}, q.options());
  const int64_t capacity = cache_keys.size(2);
  const float* qp = q.const_data_ptr<float>();
  const float* kp = k.const_data_ptr<float>();
  const float* vp = v.const_data_ptr<float>();
  const float* cp = cos.const_data_ptr<float>();
  const float* sp = sin.const_data_ptr<float>();
  float* op = out.data_ptr<float>();
  float* ck = cache_keys.data_ptr<float>();
  float* cv = cache_values.data_ptr<float>();
  for (int64_t b = 0; b < B; ++b) {
    const float* c = cp + b * D;
    const float* s = sp + b * D;
    for (int64_t h = 0; h < H; ++h) rotate_head(qp + b * q.stride(0) + h * q.stride(2), c, s, op + (b * H + h) * D, D);
    for (int64_t h = 0; h < Hkv; ++h) {
      const int64_t slot = ((b * Hkv + h) * capacity + position) * D;
      rotate_head(kp + b * k.stride(0) + h * k.stride(2), c, s, ck + slot, D);
      const float* vh = vp + b * v.stride(0) + h * v.stride(2);
      std::copy(vh, vh + D, cv + slot);
    }
  }
  return out;
}

}  // namespace anchor
