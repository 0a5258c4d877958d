// Teacher-forced statistics of responses under a policy: one forward over prompt + response
// yields, for every response token, its log-probability under softmax(logits / temperature)
// and (optionally) the entropy of that distribution. The same pass can carry an
// AttentionObserver (the credit maps read the policy's attention here).
#pragma once

#include <ATen/core/Tensor.h>

#include "trainer/model/llama_model.h"

namespace anchor {

struct ResponseStatistics {
  at::Tensor logprobs;  // [B, R] float32 (0 where response_mask is false)
  at::Tensor entropy;   // [B, R] float32, undefined unless requested
};

// prompt_ids/prompt_mask [B, P] (left-padded), response_ids/response_mask [B, R] (right-padded).
// The entropy is differentiable only with entropy_grad (an entropy bonus in the loss); as a
// metric it is computed without building a graph.
ResponseStatistics response_statistics(const LlamaModel& model, const at::Tensor& prompt_ids,
                                       const at::Tensor& prompt_mask, const at::Tensor& response_ids,
                                       const at::Tensor& response_mask, double temperature, bool with_entropy,
                                       AttentionObserver* observer = nullptr, bool entropy_grad = false);

}  // namespace anchor
