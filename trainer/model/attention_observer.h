// AttentionObserver: lets a caller see the softmax attention probabilities of chosen layers,
// chunk of query rows by chunk, while the forward pass runs. The model never keeps them:
// each chunk tensor is released as soon as on_chunk returns, so an observer that reduces
// into O(N) accumulators keeps peak memory at O(heads x chunk x N) for one layer
// (docs/design.md §5.4). The same probabilities produce the layer's output, so observing is exact.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace anchor {

struct AttentionChunk {
  int64_t layer = 0;
  // Rows [query_begin, query_begin + rows) of this forward call's T query tokens.
  int64_t query_begin = 0;
  // Key index of query row 0: the number of cached tokens before this call, or the length of
  // the shared prompt the rows attend to first. Query row r sits at key index key_offset + r.
  int64_t key_offset = 0;
  // [B, num_attention_heads, rows, key_offset + query_begin + rows] float probabilities:
  // every key up to the chunk's last query (later keys are causally masked, so they are left
  // out); masked keys are 0.
  at::Tensor probs;
  // True for the chunks of a survey sweep: an extra pass over the layer's query rows, before
  // the one that produces the layer's output, for observers that must see the whole layer
  // before reducing it (attention-sink detection). Chunks arrive in row order in both sweeps.
  bool survey = false;
  // [B, num_attention_heads, keys] float: the norm of each head's value vector at each key, when
  // the observer asks for it (wants_value_norms); undefined otherwise.
  at::Tensor value_norms;
};

class AttentionObserver {
 public:
  virtual ~AttentionObserver() = default;
  virtual bool observes_layer(int64_t layer) const = 0;
  // Query rows per chunk; trades peak memory against per-chunk overhead.
  virtual int64_t chunk_rows() const { return 128; }
  // Whether the model streams each observed layer twice (a survey sweep, then the real one).
  // The survey recomputes only the layer's scores and softmax, not the rest of the forward.
  virtual bool surveys_layer(int64_t /*layer*/) const { return false; }
  // Whether chunks carry the value vectors' norms (value-weighted attention statistics).
  virtual bool wants_value_norms() const { return false; }
  virtual void on_chunk(const AttentionChunk& chunk) = 0;
};

}  // namespace anchor
