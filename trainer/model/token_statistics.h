// Per-token statistics of a policy's logits: log-probabilities of given tokens and the
// entropy of the next-token distribution. Pure functions on tensors.
#pragma once

#include <ATen/core/Tensor.h>

namespace anchor {

// logits [B, T, V], targets [B, T] int64 -> log p(target) [B, T] float32.
at::Tensor token_logprobs(const at::Tensor& logits, const at::Tensor& targets);
// logits [B, T, V] -> entropy of softmax(logits) [B, T] float32 (nats).
at::Tensor token_entropy(const at::Tensor& logits);

}  // namespace anchor
