// LlamaModel: a Llama-family decoder (RMSNorm, rotary embeddings with default / linear /
// llama3 scaling, grouped-query attention, SwiGLU, optional tied embeddings and q/k/v bias,
// Qwen3's per-head q/k RMSNorm)
// written with plain ATen ops over parameter tensors named exactly as in Hugging Face
// checkpoints, so loading and saving are a name-for-name copy.
//
// One forward serves every use: a padded batch (position ids and a key mask), incremental
// decoding with a KVCache, and attention observation for the credit maps.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "trainer/model/attention_observer.h"
#include "trainer/model/decode_weights.h"
#include "trainer/model/kv_cache.h"
#include "trainer/model/llama_config.h"
#include "trainer/model/lora_config.h"

namespace anchor {

// The keys and values of prompts shared by several rows (Prefix Grouper, docs/design.md §2):
// one forward over the distinct prompts records them, layer by layer, still in the autograd
// graph; a second forward over the responses lets row b attend to [prompt rows[b]'s keys ; its
// own keys], so gradients from every response flow into the one prompt encoding.
struct SharedPrefix {
  std::vector<at::Tensor> keys, values;  // per layer [U, Hkv, P, D] (after rotary)
  at::Tensor rows;                       // [B] int64: the prompt (0..U-1) of each response row
  int64_t length() const { return keys.empty() ? 0 : keys.front().size(2); }
};

struct ForwardInputs {
  at::Tensor input_ids;     // [B, T] int64
  at::Tensor position_ids;  // [B, T] int64: rotary positions (left padding => per-row offsets)
  // [B, past + T] bool, true for real tokens; padding keys are never attended to. `past` is the
  // cached length, or the shared prefix's length P.
  at::Tensor key_mask;
  KVCache* cache = nullptr;              // if set: keys/values are appended, length advances
  SharedPrefix* record_prefix = nullptr;  // if set: every layer's keys and values are appended
  const SharedPrefix* prefix = nullptr;   // if set: rows attend to their prompt's keys first
  AttentionObserver* observer = nullptr;  // if set: observed layers run the chunked path
  // If set (inference only): the GEMMs use these prepacked copies of the weights.
  const DecodeWeights* packed = nullptr;
};

// Builds ForwardInputs for a whole padded batch (no cache): positions count real tokens
// only, so a left-padded row gets the same positions as the row alone.
ForwardInputs padded_batch_inputs(const at::Tensor& input_ids, const at::Tensor& attention_mask);

// Autocast for one device while it lives (as `with torch.autocast(...)`): matmuls and attention
// run in `dtype`, reductions / softmax / norms in float32, parameters keep their dtype. Nested
// scopes share autocast's cache of cast weights, so a scope around a decode loop casts each
// weight once. Inactive when `active` is false.
class ComputeScope {
 public:
  ComputeScope(at::DeviceType device, at::ScalarType dtype, bool active);
  ~ComputeScope();
  ComputeScope(const ComputeScope&) = delete;
  ComputeScope& operator=(const ComputeScope&) = delete;

 private:
  bool active_;
  at::DeviceType device_;
  bool previous_enabled_ = false;
  at::ScalarType previous_dtype_ = at::kFloat;
};

class LlamaModel {
 public:
  // Parameters initialised like transformers (normal(0, 0.02), norms 1, biases 0) from `seed`.
  LlamaModel(LlamaConfig config, const at::TensorOptions& options, uint64_t seed = 0);
  LlamaModel(const LlamaModel&) = delete;
  LlamaModel& operator=(const LlamaModel&) = delete;
  LlamaModel(LlamaModel&&) = default;

  const LlamaConfig& config() const { return config_; }
  at::Device device() const;

  // Logits [B, T, vocab] in float32.
  at::Tensor forward(const ForwardInputs& inputs) const;
  // Final-norm hidden states [B, T, hidden]; logits() maps them to the vocabulary.
  at::Tensor hidden_states(const ForwardInputs& inputs) const;
  at::Tensor logits(const at::Tensor& hidden, const DecodeWeights* packed = nullptr) const;
  // The vocabulary projection [vocab, hidden] (lm_head, or the embedding when tied), with the
  // trainable token rows of LoRA in place.
  at::Tensor output_weight() const;

  // The weights prepacked for CPU decoding (decode_weights.h), or nullptr where that path does
  // not apply (CUDA, reduced-precision compute, a LibTorch without oneDNN). Valid until the
  // parameters change.
  // With LoRA adapters: a merged copy W + scale · B·A of each adapted weight is packed, or with
  // merge_adapters false the base, and forward adds the adapters beside the packed GEMMs.
  std::shared_ptr<const DecodeWeights> pack_for_decode(int64_t batch_hint, bool merge_adapters = true) const;

  // A KV cache for `batch` rows and `capacity` positions on the model's device.
  KVCache make_cache(int64_t batch, int64_t capacity) const;

  // Every parameter under its Hugging Face name, in checkpoint order. When embeddings are
  // tied, lm_head.weight is not a separate parameter and is not listed.
  void for_each_parameter(const std::function<void(const std::string&, at::Tensor&)>& fn);
  std::vector<std::pair<std::string, at::Tensor>> named_parameters() const;
  std::vector<at::Tensor> parameters() const;
  int64_t num_parameters() const;

  // Grows the vocabulary to new_size (for added special tokens). New rows of the embedding
  // (and of an untied lm_head) are the mean of the existing rows plus N(0, noise_std) noise.
  void resize_vocab(int64_t new_size, double noise_std = 1e-3, uint64_t seed = 0);
  // Sets the embedding rows (and untied lm_head rows) of `ids` to the mean of rows
  // [0, base_rows) plus N(0, noise_std) noise, growing the vocabulary to cover every id (added
  // tokens whose ids may fall on a padded vocabulary's spare rows).
  void init_token_rows(const std::vector<int64_t>& ids, int64_t base_rows, double noise_std, uint64_t seed);

  // Moves/converts every parameter, adapter (and the rotary table) in place.
  void to(const at::TensorOptions& options);
  // Every trainable parameter: all of them, or with LoRA the adapters (the base stays frozen).
  void set_requires_grad(bool requires_grad);

  // LoRA (lora_config.h): adapters A [rank, in] and B [out, rank] on the target layers of every
  // decoder layer, in float32 on the model's device; the base parameters stop requiring
  // gradients. A is drawn from `seed` (Kaiming-uniform as PEFT, or gaussian), B is zero.
  void add_lora(const LoraSettings& settings, uint64_t seed);
  bool has_lora() const { return lora_.rank > 0; }
  const LoraSettings& lora() const { return lora_; }
  // The adapter matrices under PEFT's safetensors names, layer by layer (A before B).
  void for_each_adapter(const std::function<void(const std::string&, at::Tensor&)>& fn);
  std::vector<std::pair<std::string, at::Tensor>> adapter_parameters() const;
  // What an optimizer trains: the adapters with LoRA, else every parameter.
  std::vector<std::pair<std::string, at::Tensor>> trainable_parameters() const;
  // With LoRA: the embedding rows of `ids` (and the untied lm_head's) become trainable float32
  // copies that replace the frozen rows in forward (PEFT's trainable_token_indices): SFT's new
  // control tokens. Listed by for_each_adapter after the adapter matrices.
  void train_token_rows(const std::vector<int64_t>& ids);
  // W += scale · B·A for every adapted weight and the token rows written back, then the adapters
  // are dropped: a plain model.
  void merge_adapters();
  // While false, forward() ignores the adapters and computes the base model (the KL reference).
  void set_adapters_enabled(bool enabled) const { adapters_enabled_ = enabled; }
  bool adapters_enabled() const { return adapters_enabled_; }
  // LoRA's frozen base weights in `dtype` (bf16 on CUDA halves their memory); the adapters stay
  // float32 and forward computes under autocast.
  void set_base_dtype(at::ScalarType dtype);

  // Mixed precision: parameters stay as they are (fp32 master weights for training) and every
  // forward computes in `dtype` under autocast (bf16 on CUDA). The parameter dtype = off.
  void set_compute_dtype(at::ScalarType dtype);
  at::ScalarType compute_dtype() const { return compute_dtype_; }
  // The autocast scope forward() uses; open it around many calls to share cast weights.
  ComputeScope compute_scope() const;
  // Activation checkpointing: with grad enabled (and no cache / observer / shared prefix), each decoder layer
  // keeps only its input and recomputes its activations in backward — the same gradients for
  // about one layer's activations instead of all of them.
  void set_activation_checkpointing(bool on) { checkpoint_layers_ = on; }
  bool activation_checkpointing() const { return checkpoint_layers_; }

 private:
  struct Layer {
    at::Tensor input_norm, post_attention_norm;
    at::Tensor q_proj, k_proj, v_proj, o_proj;
    at::Tensor q_bias, k_bias, v_bias, o_bias;   // undefined when the config has no bias
    at::Tensor q_norm, k_norm;                   // [head_dim], Qwen3 only
    at::Tensor gate_proj, up_proj, down_proj;
    at::Tensor gate_bias, up_bias, down_bias;
    at::Tensor lora_a[kLoraModuleCount], lora_b[kLoraModuleCount];  // undefined where no adapter
  };
  // x W^T + b (+ the layer's adapter for `module` when there is one and adapters are enabled).
  at::Tensor project(const Layer& layer, LoraModule module, const at::Tensor& x, const at::Tensor& w,
                     const at::Tensor& b) const;
  // Packed weights without the adapters merged: adds each module's adapter output (inference) to
  // its columns of y, which holds the modules' outputs side by side in this order.
  void add_packed_adapters(const Layer& layer, std::initializer_list<LoraModule> modules, const at::Tensor& x,
                           at::Tensor& y, const ForwardInputs& in) const;

  at::Tensor attention(const Layer& layer, int64_t index, const at::Tensor& x, const at::Tensor& cos,
                       const at::Tensor& sin, const at::Tensor& allowed, const ForwardInputs& in) const;
  friend struct CheckpointedDecoderLayer;
  // One decoder layer: x [B, T, hidden] -> the next residual stream.
  at::Tensor decoder_layer(int64_t index, const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                           const at::Tensor& allowed, const ForwardInputs& in) const;
  std::vector<at::Tensor> layer_parameters(int64_t index) const;

  LlamaConfig config_;
  at::Tensor embed_tokens_, final_norm_, lm_head_;  // lm_head_ undefined when tied
  std::vector<Layer> layers_;
  at::Tensor inv_freq_;  // [head_dim / 2] float32, rope scaling applied
  at::ScalarType compute_dtype_ = at::kFloat;
  bool checkpoint_layers_ = false;
  LoraSettings lora_;                    // rank 0 = no adapters
  mutable bool adapters_enabled_ = true;
  at::Tensor token_ids_;                 // [n] int64: lora_.trainable_tokens on the device
  at::Tensor token_rows_, head_rows_;    // [n, hidden] float32; head_rows_ only for an untied lm_head
  at::Tensor input_embedding() const;    // embed_tokens_ with the token rows in place
};

// The base model while it lives, as PEFT's `with model.disable_adapter():`.
class AdaptersDisabled {
 public:
  explicit AdaptersDisabled(const LlamaModel& model) : model_(model), was_(model.adapters_enabled()) {
    model_.set_adapters_enabled(false);
  }
  ~AdaptersDisabled() { model_.set_adapters_enabled(was_); }
  AdaptersDisabled(const AdaptersDisabled&) = delete;
  AdaptersDisabled& operator=(const AdaptersDisabled&) = delete;

 private:
  const LlamaModel& model_;
  bool was_;
};

// Rotary inverse frequencies with the configured scaling, as transformers computes them.
at::Tensor rope_inverse_frequencies(const LlamaConfig& config);

}  // namespace anchor
