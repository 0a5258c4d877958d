// Decode-step kernels: one loop where the generic forward runs a chain of small ATen ops.
//
// A decode step feeds one token per row through every layer; at SmolLM2's sizes each of the
// step's elementwise ops touches a few hundred KB and costs more in dispatch and allocation than
// in arithmetic. These loops do the same arithmetic per element in the same order (each product
// and sum rounded to float as ATen does; this file is compiled without FMA contraction), so their
// results are bit-identical to the generic path, which the tests check.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace anchor {

// Whether rotate_into_cache can take this step: float32 CPU tensors, one new token per row.
bool decode_kernels_apply(const at::Tensor& q, const at::Tensor& cos);

// Rotary embedding of one decode step, with the keys and values written into the cache.
//   q [B, 1, H, D], k and v [B, 1, Hkv, D] (innermost dimension contiguous; views of the fused
//   q/k/v GEMM output are fine), cos and sin [B, 1, 1, D] contiguous,
//   cache_keys and cache_values [B, Hkv, capacity, D] contiguous.
// Returns the rotated queries [B, H, 1, D]; keys (rotated) and values land at `position`.
// Replaces: two transposes, two rotate_half (slice, neg, cat), four products, two sums and two
// cache copies.
at::Tensor rotate_into_cache(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& cos,
                             const at::Tensor& sin, at::Tensor& cache_keys, at::Tensor& cache_values, int64_t position);

}  // namespace anchor
