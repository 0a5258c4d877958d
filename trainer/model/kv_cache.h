// KVCache: preallocated keys/values for incremental decoding. Sizes are fixed up front
// (batch x capacity), so decoding never reallocates.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace anchor {

struct KVCache {
  std::vector<at::Tensor> keys;    // per layer [B, num_key_value_heads, capacity, head_dim]
  std::vector<at::Tensor> values;  // per layer, same shape
  int64_t length = 0;              // filled positions, identical for every row

  int64_t capacity() const { return keys.empty() ? 0 : keys[0].size(2); }
  int64_t batch_size() const { return keys.empty() ? 0 : keys[0].size(0); }
  // Keeps only rows `rows` (int64 [B']) — used to drop finished sequences.
  void select_rows(const at::Tensor& rows);
};

}  // namespace anchor
