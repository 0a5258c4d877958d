// Batched autoregressive sampling with a KV cache: the rollout engine.
//
// Prompts are left-padded into one batch and prefilled in one forward; then one token per
// step is drawn for every unfinished row. Rows finish independently (EOS / stop token, stop
// string, or max_new_tokens) and are dropped from the batch (and the cache) in steps of
// decode_batch_size, so late steps pay for little more than the rows still running.
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "trainer/model/llama_model.h"
#include "trainer/model/tokenizer.h"

namespace anchor {

struct SamplingParams {
  int64_t max_new_tokens = 128;
  double temperature = 1.0;  // 0 = greedy (argmax)
  int64_t top_k = 0;         // 0 = off
  double top_p = 1.0;        // 1 = off
  std::vector<std::string> stop_strings;   // finish once the response text contains one
  // empty = the model's eos_token_id(s) (config.json and generation_config.json) + tokenizer EOS
  std::vector<int64_t> stop_token_ids;
  std::vector<int64_t> banned_token_ids;   // never sampled (e.g. SFT control tokens)
  // Steering (conditional SFT's --control good): the probability of every id in steered_token_ids
  // goes to steer_token_id (the others get none), so where the model would start a sentence with
  // a control token it is always the asked one; its log-prob is that of the merged event.
  int64_t steer_token_id = -1;
  std::vector<int64_t> steered_token_ids;
  uint64_t seed = 0;
  // Random stream of each row (default: the row index). A row's draws depend only on (seed,
  // stream, position), never on the other rows of the batch, so a trainer that numbers rows by
  // their global sample index gets the same samples however the batch is split across ranks.
  std::vector<int64_t> streams;
  // false: recompute the whole sequence each step instead of using the KV cache. Same
  // results, O(T^2) work; kept as the reference the cache path is tested against.
  bool use_cache = true;
  // Rows with the same prompt are prefilled once and their cache rows copied (same results);
  // false prefills every row (benchmarks measure what sharing saves).
  bool share_prefill = true;
  // LoRA on the prepacked CPU path: pack a merged copy W + scale B·A (true, measured faster:
  // docs/lora.md), or pack the base and add the adapters' two small GEMMs per layer.
  bool merge_adapters = true;
  // Called with (row, token id) for every sampled token, in order (streaming output); rows are
  // indices into the prompts.
  std::function<void(int64_t, int64_t)> on_token;
};

// The decode batch for `live_rows` running rows: the row count itself up to 8, then the next of
// four sizes per doubling (8, 10, 12, 14, 16, 20, 24, 28, 32, 40, ...), at most 25% padding.
// Finished rows are dropped only when the live ones fit a smaller size, so a run sees a few
// dozen decode shapes, not every count from the batch size down to 1: each new GEMM shape costs
// the CPU GEMM library a primitive it keeps cached, and resident memory grew with every one.
int64_t decode_batch_size(int64_t live_rows);

enum class FinishReason { stop_token, stop_string, length };
const char* finish_reason_name(FinishReason reason);

struct RolloutBatch {
  at::Tensor prompt_ids;         // [B, P] int64, left-padded with pad_id
  at::Tensor prompt_mask;        // [B, P] bool, true on real prompt tokens
  at::Tensor response_ids;       // [B, R] int64, right-padded with pad_id
  at::Tensor response_mask;      // [B, R] bool, true on generated tokens (stop token included)
  // [B, R] float32: log-prob of each sampled token under softmax(logits / temperature) with
  // banned tokens removed (before top-k / top-p truncation; temperature 1 for greedy).
  // 0 where response_mask is false.
  at::Tensor sampling_logprobs;
  std::vector<std::string> response_texts;  // decoded, cut after the stop string if one hit
  std::vector<FinishReason> finish_reasons;
  int64_t pad_id = 0;
  int64_t generated_tokens = 0;  // sum of response_mask
};

// Samples one response per prompt (token ids, BOS included if wanted).
RolloutBatch generate(const LlamaModel& model, const Tokenizer& tokenizer,
                      const std::vector<std::vector<int64_t>>& prompts, const SamplingParams& params);

// generate() on at most `rows_per_call` prompts at a time (0 = all at once), the pieces joined
// as one batch (prompts left-padded, responses right-padded to the widest piece): the same
// samples, since each row draws from its own stream. The memory plan sizes the pieces
// (trainer/run/memory_plan.h).
RolloutBatch generate_in_chunks(const LlamaModel& model, const Tokenizer& tokenizer,
                                const std::vector<std::vector<int64_t>>& prompts, const SamplingParams& params,
                                int64_t rows_per_call);

// [streams.size()] float32 uniforms in [0, 1): draw `position` of each stream under `seed`.
at::Tensor stream_uniforms(uint64_t seed, const std::vector<int64_t>& streams, int64_t position);

// Applies banned tokens, temperature, top-k and top-p to logits [B, V] and draws one token
// per row with the row's uniform draw (`uniforms` [B], in [0, 1)). Ids >= sampleable_vocab (embedding rows the tokenizer does
// not know; 0 = no limit) are never drawn. Returns {tokens [B] int64, logprobs [B] float32}.
std::pair<at::Tensor, at::Tensor> sample_next_tokens(const at::Tensor& logits, const SamplingParams& params,
                                                     const at::Tensor& uniforms, int64_t sampleable_vocab = 0);

}  // namespace anchor
