// Log-probabilities (and entropies) of target tokens straight from final hidden states, in
// chunks of rows — the fused "linear + log-softmax" of Liger-Kernel / torchtune: only one
// chunk's [rows, vocab] logits exist at a time, in forward and, recomputed, in backward. With a
// 49k vocabulary the unfused path materialises logits, log-softmax, the gather's zero-filled
// gradient and the log-softmax gradient over the whole micro-batch (4 x 400 MB for 16 x 128
// SmolLM2 tokens); this path keeps one logsumexp per row instead and recomputes a chunk's logits
// in backward (one extra vocabulary GEMM).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace anchor {

struct FusedTokenStatistics {
  at::Tensor logprobs;  // [N] float32: log softmax(hidden @ weight^T / temperature)[target]
  at::Tensor entropy;   // [N] float32 entropy of that distribution; undefined unless asked for
};

// hidden [N, H], weight [V, H] (the output embedding), targets [N] int64. Differentiable in
// hidden and weight through the log-probabilities, and through the entropy when entropy_grad.
// compute_dtype: the model's compute dtype (matmuls under autocast when it differs from the
// weight's, in forward and in backward). chunk_rows = 0 picks ~256 MB of logits per chunk.
FusedTokenStatistics fused_token_logprobs(const at::Tensor& hidden, const at::Tensor& weight,
                                          const at::Tensor& targets, double temperature, bool with_entropy,
                                          bool entropy_grad, at::ScalarType compute_dtype, int64_t chunk_rows = 0);

}  // namespace anchor
