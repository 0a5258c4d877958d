// The RL step's no-grad pass over the whole step batch, in micro-batches: per-token
// log-probabilities (old or reference), optionally entropies, and — fused into the same
// forward when a credit strategy reads attention — the streamed attention statistics the
// credit map is built from (docs/design.md §2: "one pass").
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>

#include "credit/attention_statistics.h"
#include "credit/credit_options.h"
#include "trainer/model/llama_model.h"
#include "trainer/rollout/step_batch.h"

namespace anchor {

struct PolicyPass {
  at::Tensor logprobs;  // [N, R] float (0 at padding)
  at::Tensor entropy;   // [N, R] float, undefined unless requested
  std::optional<credit::AttentionStatistics> attention;  // [N, ...], R columns
  double credit_seconds = 0;  // time spent reducing attention chunks
};

// credit == nullptr: no attention is observed. sentence_ids [N, R] (-1 = none) adds the
// sentence block sums of thought anchors. share_prompts: each micro-batch encodes each of its
// distinct prompts once (response_statistics.h; exact).
PolicyPass policy_pass(const LlamaModel& model, const StepBatch& batch, double temperature, int64_t micro_batch,
                       bool with_entropy, const credit::CreditOptions* credit = nullptr,
                       const at::Tensor& sentence_ids = {}, bool share_prompts = true);

}  // namespace anchor
