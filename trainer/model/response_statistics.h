// Teacher-forced statistics of responses under a policy: one forward over prompt + response
// yields, for every response token, its log-probability under softmax(logits / temperature)
// and (optionally) the entropy of that distribution. The same pass can carry an
// AttentionObserver (the credit maps read the policy's attention here).
//
// Shared prompts (Prefix Grouper, docs/design.md §2): rows with identical prompts — the G
// samples of a group — can share one encoding of the prompt. A first forward runs over the
// distinct prompts and records their keys and values; a second runs over the responses, each
// attending to [its prompt's keys ; its own keys]. Outputs and gradients equal the unshared
// pass (to float rounding); the prompt's projections and MLPs run once per distinct prompt
// instead of once per row.
#pragma once

#include <ATen/core/Tensor.h>

#include "trainer/model/llama_model.h"

namespace anchor {

struct ResponseStatistics {
  at::Tensor logprobs;  // [B, R] float32 (0 where response_mask is false)
  at::Tensor entropy;   // [B, R] float32, undefined unless requested
  int64_t positions = 0;  // token positions the forward ran over (prompt + response, with padding)
};

struct ResponseStatisticsOptions {
  double temperature = 1.0;
  bool with_entropy = false;
  // The entropy is differentiable only with entropy_grad (an entropy bonus in the loss); as a
  // metric it is computed without building a graph.
  bool entropy_grad = false;
  // Encode each distinct prompt once. Ignored (the plain pass runs) when no prompt repeats, and
  // with grad under activation checkpointing, which recomputes layers one by one.
  bool share_prompts = false;
  AttentionObserver* observer = nullptr;  // sees response query rows (and, unshared, prompt rows)
};

// prompt_ids/prompt_mask [B, P] (left-padded), response_ids/response_mask [B, R] (right-padded).
ResponseStatistics response_statistics(const LlamaModel& model, const at::Tensor& prompt_ids,
                                       const at::Tensor& prompt_mask, const at::Tensor& response_ids,
                                       const at::Tensor& response_mask, const ResponseStatisticsOptions& options);

}  // namespace anchor
