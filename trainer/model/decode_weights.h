// Decode weights: the model's matrices prepacked once per rollout for the CPU GEMM library
// (oneDNN, through LibTorch's own mkldnn ops `_reorder_linear_weight` / `_linear_pointwise`,
// the path torch.compile uses on CPU), with q/k/v and gate/up concatenated so that each layer
// runs 4 GEMMs instead of 7. Decode GEMMs are skinny (batch rows x hidden); MKL's default path
// repacks every weight on every call, which costs more than the multiply at these shapes
// (measured on SmolLM2: 74 -> 58 ms of GEMM per 16-row step, 135 -> 110 ms per 64-row step).
//
// Inference only: no autograd through packed weights, and the pack is stale as soon as the
// parameters change (the sampler packs at the start of every generate call).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace anchor {

struct PackedLinear {
  at::Tensor weight;  // oneDNN-packed [out, in]
  at::Tensor bias;    // [out] or undefined
  int64_t out_features = 0;
};

struct DecodeWeights {
  struct Layer {
    PackedLinear qkv;      // [q_dim + 2 * kv_dim, hidden]
    PackedLinear o;        // [hidden, q_dim]
    PackedLinear gate_up;  // [2 * intermediate, hidden]
    PackedLinear down;     // [hidden, intermediate]
  };
  std::vector<Layer> layers;
  PackedLinear lm_head;    // [vocab, hidden]
  // LoRA: the packed matrices hold W + scale · B·A (true), or W alone and forward adds the
  // adapters (false). Without adapters, always true.
  bool adapters_merged = true;
};

// Whether this LibTorch build has the oneDNN ops (CPU builds with mkldnn).
bool packed_linear_available();
// Packs w [out, in] (float32, CPU) for about `batch_hint` input rows.
PackedLinear pack_linear(const at::Tensor& weight, const at::Tensor& bias, int64_t batch_hint);
// x [..., in] -> [..., out].
at::Tensor packed_linear(const at::Tensor& x, const PackedLinear& p);

}  // namespace anchor
