// Context-dependency score of a (user turn, response) pair (docs/design.md §6, Wang et al.): the mean
// over response tokens of the max over heads (one layer) of the attention mass the response
// token puts on the user message's tokens (role markers, BOS / EOS and template text are not
// user tokens). Measured by a seed model through the attention observer, one chunk of query
// rows at a time, so no N x N map is kept.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "data/chat_template.h"
#include "trainer/model/attention_observer.h"
#include "trainer/model/llama_model.h"
#include "trainer/model/tokenizer.h"

namespace anchor::sft {

// Reference: probs [B, H, N, N] (rows: queries, columns: keys), user_keys [B, N] bool,
// response_queries [B, N] bool. Returns [B] float64; a row without response tokens scores 0.
at::Tensor context_dependency_scores(const at::Tensor& probs, const at::Tensor& user_keys,
                                     const at::Tensor& response_queries);

// The same reduction as an observer of one layer's attention, chunk by chunk: O(B x N) state.
class ContextDependencyObserver : public AttentionObserver {
 public:
  ContextDependencyObserver(int64_t layer, at::Tensor user_keys, at::Tensor response_queries);
  bool observes_layer(int64_t layer) const override { return layer == layer_; }
  void on_chunk(const AttentionChunk& chunk) override;
  at::Tensor scores() const;  // [B] float64

 private:
  int64_t layer_;
  at::Tensor user_keys_;         // [B, N] float
  at::Tensor response_queries_;  // [B, N] float
  at::Tensor sums_;              // [B] float64
};

// One (user message, response) pair as the seed model reads it: the user turn rendered with the
// chat template (generation prompt included), the response text after it.
struct ScoredTurn {
  std::vector<int64_t> ids;
  std::vector<uint8_t> user;      // 1 on tokens of the user message's text
  std::vector<uint8_t> response;  // 1 on tokens of the response text
};
ScoredTurn scored_turn_tokens(const Tokenizer& tokenizer, const data::ChatTemplate& chat, const std::string& user,
                              const std::string& response);

// Scores of many turns with `model` at `layer` (-1 = num_layers / 2), `batch_size` turns per
// forward. Turns longer than the model's positions are an error naming the turn index.
std::vector<double> score_context_dependency(const LlamaModel& model, const std::vector<ScoredTurn>& turns,
                                             int64_t layer, int64_t batch_size = 16);

}  // namespace anchor::sft
