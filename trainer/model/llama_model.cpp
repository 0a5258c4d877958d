#include "trainer/model/llama_model.h"

#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include <cmath>

#include "trainer/common/error.h"
#include "trainer/model/decode_kernels.h"

namespace anchor {

void KVCache::select_rows(const at::Tensor& rows) {
  // Only the filled positions move (the rest is written before it is read): rows finish one
  // by one in a rollout, and each drop used to copy the whole capacity of every layer.
  auto select = [&](at::Tensor& t) {
    if (!t.device().is_cpu()) {  // measured and tested on CPU only: other devices keep the plain copy
      t = t.index_select(0, rows);
      return;
    }
    at::Tensor kept = at::empty({rows.size(0), t.size(1), t.size(2), t.size(3)}, t.options());
    at::Tensor filled = kept.slice(2, 0, length);
    at::index_select_out(filled, t.slice(2, 0, length), 0, rows);
    t = kept;
  };
  for (auto& k : keys) select(k);
  for (auto& v : values) select(v);
}

namespace {

// The weight of a decoder layer's linear `m` (the layer type is deduced: it is private to the model).
template <class Layer>
auto& projection_weight(Layer& l, LoraModule m) {
  switch (m) {
    case LoraModule::q_proj: return l.q_proj;
    case LoraModule::k_proj: return l.k_proj;
    case LoraModule::v_proj: return l.v_proj;
    case LoraModule::o_proj: return l.o_proj;
    case LoraModule::gate_proj: return l.gate_proj;
    case LoraModule::up_proj: return l.up_proj;
    case LoraModule::down_proj: break;
  }
  return l.down_proj;
}

}  // namespace

ForwardInputs padded_batch_inputs(const at::Tensor& input_ids, const at::Tensor& attention_mask) {
  AR_CHECK(input_ids.dim() == 2 && attention_mask.sizes() == input_ids.sizes(),
           "padded_batch_inputs: input_ids and attention_mask must both be [B, T], got ", input_ids.sizes(),
           " and ", attention_mask.sizes());
  ForwardInputs in;
  in.input_ids = input_ids;
  in.key_mask = attention_mask.to(torch::kBool);
  in.position_ids = (in.key_mask.to(torch::kLong).cumsum(1) - 1).clamp_min(0);
  return in;
}

ComputeScope::ComputeScope(at::DeviceType device, at::ScalarType dtype, bool active) : active_(active), device_(device) {
  if (!active_) return;
  previous_enabled_ = at::autocast::is_autocast_enabled(device_);
  previous_dtype_ = at::autocast::get_autocast_dtype(device_);
  at::autocast::set_autocast_enabled(device_, true);
  at::autocast::set_autocast_dtype(device_, dtype);
  at::autocast::increment_nesting();
}

ComputeScope::~ComputeScope() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_autocast_enabled(device_, previous_enabled_);
  at::autocast::set_autocast_dtype(device_, previous_dtype_);
}

at::Tensor rope_inverse_frequencies(const LlamaConfig& c) {
  const int64_t dim = c.head_dim;
  auto exponents = torch::arange(0, dim, 2, torch::kLong).to(torch::kFloat) / static_cast<double>(dim);
  at::Tensor inv_freq = 1.0 / torch::pow(c.rope.theta, exponents);
  switch (c.rope.type) {
    case RopeType::default_rope: break;
    case RopeType::linear: inv_freq = inv_freq / c.rope.factor; break;
    case RopeType::llama3: {
      // Llama 3.1 frequency-dependent scaling: long wavelengths are divided by `factor`,
      // short ones kept, and the band between is interpolated smoothly.
      const double old_ctx = static_cast<double>(c.rope.original_max_position_embeddings);
      const double low_freq_wavelen = old_ctx / c.rope.low_freq_factor;
      const double high_freq_wavelen = old_ctx / c.rope.high_freq_factor;
      at::Tensor wavelen = 2 * M_PI / inv_freq;
      at::Tensor scaled = torch::where(wavelen > low_freq_wavelen, inv_freq / c.rope.factor, inv_freq);
      at::Tensor smooth = (old_ctx / wavelen - c.rope.low_freq_factor) /
                          (c.rope.high_freq_factor - c.rope.low_freq_factor);
      at::Tensor smoothed = (1 - smooth) * scaled / c.rope.factor + smooth * scaled;
      at::Tensor medium = (wavelen >= high_freq_wavelen).logical_and(wavelen <= low_freq_wavelen);
      inv_freq = torch::where(medium, smoothed, scaled);
      break;
    }
  }
  return inv_freq.to(torch::kFloat);
}

LlamaModel::LlamaModel(LlamaConfig config, const at::TensorOptions& options, uint64_t seed)
    : config_(std::move(config)) {
  const LlamaConfig& c = config_;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const auto cpu = torch::TensorOptions().dtype(torch::kFloat);
  auto normal = [&](std::vector<int64_t> shape) { return at::normal(0.0, 0.02, shape, gen, cpu); };
  auto ones = [&](int64_t n) { return torch::ones({n}, cpu); };
  auto zeros = [&](int64_t n) { return torch::zeros({n}, cpu); };
  const int64_t q_dim = c.num_attention_heads * c.head_dim;
  const int64_t kv_dim = c.num_key_value_heads * c.head_dim;

  embed_tokens_ = normal({c.vocab_size, c.hidden_size});
  layers_.resize(static_cast<size_t>(c.num_hidden_layers));
  for (Layer& l : layers_) {
    l.input_norm = ones(c.hidden_size);
    l.post_attention_norm = ones(c.hidden_size);
    l.q_proj = normal({q_dim, c.hidden_size});
    l.k_proj = normal({kv_dim, c.hidden_size});
    l.v_proj = normal({kv_dim, c.hidden_size});
    l.o_proj = normal({c.hidden_size, q_dim});
    if (c.qkv_bias) {
      l.q_bias = zeros(q_dim);
      l.k_bias = zeros(kv_dim);
      l.v_bias = zeros(kv_dim);
    }
    if (c.o_proj_bias) l.o_bias = zeros(c.hidden_size);
    if (c.qk_norm) {
      l.q_norm = ones(c.head_dim);
      l.k_norm = ones(c.head_dim);
    }
    l.gate_proj = normal({c.intermediate_size, c.hidden_size});
    l.up_proj = normal({c.intermediate_size, c.hidden_size});
    l.down_proj = normal({c.hidden_size, c.intermediate_size});
    if (c.mlp_bias) {
      l.gate_bias = zeros(c.intermediate_size);
      l.up_bias = zeros(c.intermediate_size);
      l.down_bias = zeros(c.hidden_size);
    }
  }
  final_norm_ = ones(c.hidden_size);
  if (!c.tie_word_embeddings) lm_head_ = normal({c.vocab_size, c.hidden_size});
  inv_freq_ = rope_inverse_frequencies(c);
  to(options);
}

at::Device LlamaModel::device() const { return embed_tokens_.device(); }

void LlamaModel::for_each_parameter(const std::function<void(const std::string&, at::Tensor&)>& fn) {
  fn("model.embed_tokens.weight", embed_tokens_);
  for (size_t i = 0; i < layers_.size(); ++i) {
    Layer& l = layers_[i];
    const std::string p = "model.layers." + std::to_string(i) + ".";
    fn(p + "input_layernorm.weight", l.input_norm);
    fn(p + "self_attn.q_proj.weight", l.q_proj);
    if (l.q_bias.defined()) fn(p + "self_attn.q_proj.bias", l.q_bias);
    fn(p + "self_attn.k_proj.weight", l.k_proj);
    if (l.k_bias.defined()) fn(p + "self_attn.k_proj.bias", l.k_bias);
    fn(p + "self_attn.v_proj.weight", l.v_proj);
    if (l.v_bias.defined()) fn(p + "self_attn.v_proj.bias", l.v_bias);
    fn(p + "self_attn.o_proj.weight", l.o_proj);
    if (l.o_bias.defined()) fn(p + "self_attn.o_proj.bias", l.o_bias);
    if (l.q_norm.defined()) fn(p + "self_attn.q_norm.weight", l.q_norm);
    if (l.k_norm.defined()) fn(p + "self_attn.k_norm.weight", l.k_norm);
    fn(p + "post_attention_layernorm.weight", l.post_attention_norm);
    fn(p + "mlp.gate_proj.weight", l.gate_proj);
    if (l.gate_bias.defined()) fn(p + "mlp.gate_proj.bias", l.gate_bias);
    fn(p + "mlp.up_proj.weight", l.up_proj);
    if (l.up_bias.defined()) fn(p + "mlp.up_proj.bias", l.up_bias);
    fn(p + "mlp.down_proj.weight", l.down_proj);
    if (l.down_bias.defined()) fn(p + "mlp.down_proj.bias", l.down_bias);
  }
  fn("model.norm.weight", final_norm_);
  if (lm_head_.defined()) fn("lm_head.weight", lm_head_);
}

std::vector<std::pair<std::string, at::Tensor>> LlamaModel::named_parameters() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  // for_each_parameter only hands out references; the tensors share storage with ours.
  const_cast<LlamaModel*>(this)->for_each_parameter(
      [&](const std::string& name, at::Tensor& t) { out.emplace_back(name, t); });
  return out;
}

std::vector<at::Tensor> LlamaModel::parameters() const {
  std::vector<at::Tensor> out;
  for (auto& [_, t] : named_parameters()) out.push_back(t);
  return out;
}

int64_t LlamaModel::num_parameters() const {
  int64_t n = 0;
  for (const auto& t : parameters()) n += t.numel();
  return n;
}

void LlamaModel::to(const at::TensorOptions& options) {
  for_each_parameter([&](const std::string&, at::Tensor& t) {
    const bool grad = t.requires_grad();
    t = t.detach().to(options.device(), options.dtype().toScalarType()).set_requires_grad(grad);
  });
  for_each_adapter([&](const std::string&, at::Tensor& t) {  // adapters stay float32
    const bool grad = t.requires_grad();
    t = t.detach().to(options.device()).set_requires_grad(grad);
  });
  if (token_ids_.defined()) token_ids_ = token_ids_.to(options.device());
  inv_freq_ = inv_freq_.to(options.device());
  compute_dtype_ = options.dtype().toScalarType();  // plain (not mixed) precision after a conversion
}

void LlamaModel::resize_vocab(int64_t new_size, double noise_std, uint64_t seed) {
  const int64_t old_size = config_.vocab_size;
  AR_CHECK(new_size >= old_size, "resize_vocab: cannot shrink the vocabulary from ", old_size, " to ", new_size);
  if (new_size == old_size) return;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto grow = [&](at::Tensor& table) {
    const bool grad = table.requires_grad();
    at::Tensor old = table.detach();
    at::Tensor mean = old.to(torch::kFloat).mean(0, /*keepdim=*/true).cpu();
    at::Tensor noise = at::normal(0.0, noise_std, {new_size - old_size, old.size(1)}, gen,
                                  torch::TensorOptions().dtype(torch::kFloat));
    at::Tensor rows = (mean + noise).to(old.options());
    table = torch::cat({old, rows}, 0).set_requires_grad(grad);
  };
  grow(embed_tokens_);
  if (lm_head_.defined()) grow(lm_head_);
  config_.vocab_size = new_size;
}

void LlamaModel::init_token_rows(const std::vector<int64_t>& ids, int64_t base_rows, double noise_std, uint64_t seed) {
  if (ids.empty()) return;
  AR_CHECK(base_rows >= 1 && base_rows <= config_.vocab_size, "init_token_rows: base_rows ", base_rows,
           " outside the vocabulary of ", config_.vocab_size);
  const int64_t needed = *std::max_element(ids.begin(), ids.end()) + 1;
  if (needed > config_.vocab_size) resize_vocab(needed, 0.0, seed);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  torch::NoGradGuard no_grad;
  auto init = [&](at::Tensor& table) {
    const at::Tensor mean = table.slice(0, 0, base_rows).to(torch::kFloat).mean(0).cpu();
    for (int64_t id : ids) {
      AR_CHECK(id >= base_rows, "init_token_rows: id ", id, " is one of the base rows");
      const at::Tensor noise = at::normal(0.0, noise_std, {table.size(1)}, gen, torch::TensorOptions().dtype(torch::kFloat));
      table[id].copy_((mean + noise).to(table.options()));
    }
  };
  init(embed_tokens_);
  if (lm_head_.defined()) init(lm_head_);
}

void LlamaModel::set_compute_dtype(at::ScalarType dtype) {
  AR_CHECK(dtype == at::kFloat || dtype == at::kBFloat16 || dtype == at::kHalf,
           "compute dtype must be float32, bfloat16 or float16, got ", dtype);
  compute_dtype_ = dtype;
}

ComputeScope LlamaModel::compute_scope() const {
  // Float32 adapters beside reduced-precision compute need autocast too (even on a bf16 base).
  const bool mixed = compute_dtype_ != embed_tokens_.scalar_type() || (has_lora() && compute_dtype_ != at::kFloat);
  return ComputeScope(device().type(), compute_dtype_, mixed);
}

std::vector<at::Tensor> LlamaModel::layer_parameters(int64_t index) const {
  const Layer& l = layers_[static_cast<size_t>(index)];
  std::vector<at::Tensor> out;
  for (const at::Tensor* t : {&l.input_norm, &l.post_attention_norm, &l.q_proj, &l.k_proj, &l.v_proj, &l.o_proj,
                              &l.q_bias, &l.k_bias, &l.v_bias, &l.o_bias, &l.q_norm, &l.k_norm, &l.gate_proj,
                              &l.up_proj, &l.down_proj, &l.gate_bias, &l.up_bias, &l.down_bias})
    if (t->defined()) out.push_back(*t);
  for (int m = 0; m < kLoraModuleCount; ++m)
    if (l.lora_a[m].defined()) {
      out.push_back(l.lora_a[m]);
      out.push_back(l.lora_b[m]);
    }
  return out;
}

void LlamaModel::set_requires_grad(bool requires_grad) {
  if (has_lora()) for_each_adapter([&](const std::string&, at::Tensor& t) { t.set_requires_grad(requires_grad); });
  else for_each_parameter([&](const std::string&, at::Tensor& t) { t.set_requires_grad(requires_grad); });
}

void LlamaModel::add_lora(const LoraSettings& settings, uint64_t seed) {
  AR_CHECK(!has_lora(), "add_lora: the model already has adapters");
  AR_CHECK(settings.rank >= 1, "add_lora: rank must be >= 1, got ", settings.rank);
  AR_CHECK(!settings.targets.empty(), "add_lora: no target modules");
  lora_ = settings;
  for_each_parameter([](const std::string&, at::Tensor& t) { t = t.detach().set_requires_grad(false); });
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const auto cpu = torch::TensorOptions().dtype(torch::kFloat);
  const auto on_device = torch::TensorOptions().dtype(torch::kFloat).device(device());
  const int64_t r = settings.rank;
  for (Layer& l : layers_) {
    for (LoraModule m : settings.targets) {
      const size_t i = static_cast<size_t>(m);
      const int64_t out = projection_weight(l, m).size(0), in = projection_weight(l, m).size(1);
      // PEFT: kaiming_uniform_(A, a=sqrt(5)) is U(-1/sqrt(in), 1/sqrt(in)); gaussian is N(0, 1/r).
      at::Tensor a = settings.init == "gaussian"
                         ? at::normal(0.0, 1.0 / static_cast<double>(r), {r, in}, gen, cpu)
                         : at::empty({r, in}, cpu).uniform_(-1.0 / std::sqrt(static_cast<double>(in)),
                                                              1.0 / std::sqrt(static_cast<double>(in)), gen);
      l.lora_a[i] = a.to(on_device).set_requires_grad(true);
      l.lora_b[i] = torch::zeros({out, r}, on_device).set_requires_grad(true);
    }
  }
  lora_.trainable_tokens.clear();
  train_token_rows(settings.trainable_tokens);
}

void LlamaModel::for_each_adapter(const std::function<void(const std::string&, at::Tensor&)>& fn) {
  for (size_t i = 0; i < layers_.size(); ++i)
    for (int m = 0; m < kLoraModuleCount; ++m) {
      Layer& l = layers_[i];
      if (!l.lora_a[m].defined()) continue;
      fn(lora_tensor_name(static_cast<int64_t>(i), static_cast<LoraModule>(m), 'A'), l.lora_a[m]);
      fn(lora_tensor_name(static_cast<int64_t>(i), static_cast<LoraModule>(m), 'B'), l.lora_b[m]);
    }
  if (token_rows_.defined()) fn(kEmbedTokenRowsName, token_rows_);
  if (head_rows_.defined()) fn(kHeadTokenRowsName, head_rows_);
}

void LlamaModel::train_token_rows(const std::vector<int64_t>& ids) {
  AR_CHECK(has_lora(), "train_token_rows: only with LoRA (without it every row trains)");
  if (ids.empty()) return;
  for (int64_t id : ids)
    AR_CHECK(id >= 0 && id < config_.vocab_size, "train_token_rows: token id ", id, " outside the vocabulary of ",
             config_.vocab_size);
  torch::NoGradGuard no_grad;
  lora_.trainable_tokens = ids;
  token_ids_ = torch::tensor(ids, torch::kLong).to(device());
  token_rows_ = embed_tokens_.index_select(0, token_ids_).to(torch::kFloat).clone().set_requires_grad(true);
  if (lm_head_.defined())
    head_rows_ = lm_head_.index_select(0, token_ids_).to(torch::kFloat).clone().set_requires_grad(true);
}

at::Tensor LlamaModel::input_embedding() const {
  if (!token_rows_.defined() || !adapters_enabled_) return embed_tokens_;
  return embed_tokens_.index_copy(0, token_ids_, token_rows_.to(embed_tokens_.scalar_type()));
}

at::Tensor LlamaModel::output_weight() const {
  if (!lm_head_.defined()) return input_embedding();
  if (!head_rows_.defined() || !adapters_enabled_) return lm_head_;
  return lm_head_.index_copy(0, token_ids_, head_rows_.to(lm_head_.scalar_type()));
}

std::vector<std::pair<std::string, at::Tensor>> LlamaModel::adapter_parameters() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  const_cast<LlamaModel*>(this)->for_each_adapter(
      [&](const std::string& name, at::Tensor& t) { out.emplace_back(name, t); });
  return out;
}

std::vector<std::pair<std::string, at::Tensor>> LlamaModel::trainable_parameters() const {
  return has_lora() ? adapter_parameters() : named_parameters();
}

void LlamaModel::merge_adapters() {
  if (!has_lora()) return;
  torch::NoGradGuard no_grad;
  for (Layer& l : layers_) {
    for (int m = 0; m < kLoraModuleCount; ++m) {
      if (!l.lora_a[m].defined()) continue;
      at::Tensor& w = projection_weight(l, static_cast<LoraModule>(m));
      const at::Tensor delta = l.lora_b[m].mm(l.lora_a[m]).mul_(lora_.scale());
      w = (w.to(torch::kFloat) + delta).to(w.scalar_type());
      l.lora_a[m] = at::Tensor();
      l.lora_b[m] = at::Tensor();
    }
  }
  if (token_rows_.defined()) embed_tokens_.index_copy_(0, token_ids_, token_rows_.to(embed_tokens_.scalar_type()));
  if (head_rows_.defined()) lm_head_.index_copy_(0, token_ids_, head_rows_.to(lm_head_.scalar_type()));
  token_ids_ = token_rows_ = head_rows_ = at::Tensor();
  lora_ = LoraSettings{};
}

void LlamaModel::set_base_dtype(at::ScalarType dtype) {
  for_each_parameter([&](const std::string&, at::Tensor& t) { t = t.detach().to(dtype).set_requires_grad(false); });
}


KVCache LlamaModel::make_cache(int64_t batch, int64_t capacity) const {
  KVCache cache;
  // Keys and values are stored in the compute dtype (bf16 under mixed precision).
  const auto options = embed_tokens_.options().dtype(compute_dtype_).requires_grad(false);
  for (int64_t i = 0; i < config_.num_hidden_layers; ++i) {
    cache.keys.push_back(torch::zeros({batch, config_.num_key_value_heads, capacity, config_.head_dim}, options));
    cache.values.push_back(torch::zeros_like(cache.keys.back()));
  }
  return cache;
}

namespace {

// Keys before this call's first query: the cached tokens, or the shared prompt.
int64_t past_length(const ForwardInputs& in) {
  return in.cache ? in.cache->length : in.prefix ? in.prefix->length() : 0;
}

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  if (x.scalar_type() == torch::kFloat) return at::rms_norm(x, {x.size(-1)}, weight, eps);  // one fused op
  // Reduced precision: normalise in float32 like transformers, then scale in the model dtype.
  at::Tensor xf = x.to(torch::kFloat);
  at::Tensor normed = xf * torch::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * normed.to(x.scalar_type());
}

at::Tensor rotate_half(const at::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return torch::cat({-x.slice(-1, half), x.slice(-1, 0, half)}, -1);
}

at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  return b.defined() ? at::linear(x, w, b) : at::linear(x, w);
}

// Decode steps up to this many query rows use the explicit attention path.
constexpr int64_t kExplicitAttentionMaxRows = 8;

// Grouped-query attention without repeating keys: the G query heads that share a key/value
// head are stacked along the row axis, so one matmul per kv head serves all of them.
// q [B, H, R, D], k [B, Hkv, S, D], allowed [B, 1, R, S] -> float32 probabilities [B, H, R, S].
at::Tensor attention_probabilities(const at::Tensor& q, const at::Tensor& k, const at::Tensor& allowed, double scale) {
  const int64_t B = q.size(0), H = q.size(1), R = q.size(2), D = q.size(3), Hkv = k.size(1), S = k.size(2);
  const int64_t G = H / Hkv;
  at::Tensor scores = torch::matmul(q.reshape({B, Hkv, G * R, D}), k.transpose(-1, -2)).view({B, H, R, S});
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  if (!at::GradMode::is_enabled()) {  // inference (decode): the same values, two fewer buffers
    scores = scores.to(torch::kFloat);
    scores.mul_(scale).masked_fill_(allowed.logical_not(), kNegInf);
    return torch::softmax(scores, -1);
  }
  return torch::softmax((scores.to(torch::kFloat) * scale).masked_fill(allowed.logical_not(), kNegInf), -1);
}

// probs [B, H, R, S] (model dtype), v [B, Hkv, S, D] -> [B, H, R, D].
at::Tensor attend(const at::Tensor& probs, const at::Tensor& v) {
  const int64_t B = probs.size(0), H = probs.size(1), R = probs.size(2), S = probs.size(3), Hkv = v.size(1);
  return torch::matmul(probs.reshape({B, Hkv, (H / Hkv) * R, S}), v).view({B, H, R, v.size(3)});
}

}  // namespace

at::Tensor LlamaModel::project(const Layer& l, LoraModule module, const at::Tensor& x, const at::Tensor& w,
                               const at::Tensor& b) const {
  at::Tensor y = linear(x, w, b);
  const size_t i = static_cast<size_t>(module);
  if (!adapters_enabled_ || !l.lora_a[i].defined()) return y;
  // Dropout on the adapter's input only, and only when training (grad mode); the trainers seed
  // the default generator per step, so a resumed run draws the same masks.
  const at::Tensor in = lora_.dropout > 0 && at::GradMode::is_enabled() ? at::dropout(x, lora_.dropout, true) : x;
  // In place (linear's backward does not read its output): no [tokens, out] temporaries beyond
  // the adapter's own output (measured: +0.9 GB peak RSS on SmolLM2 GRPO with them).
  return y.add_(at::linear(at::linear(in, l.lora_a[i]), l.lora_b[i]), lora_.scale());
}

void LlamaModel::add_packed_adapters(const Layer& l, std::initializer_list<LoraModule> modules, const at::Tensor& x,
                                     at::Tensor& y, const ForwardInputs& in) const {
  if (in.packed->adapters_merged || !adapters_enabled_) return;
  int64_t column = 0;
  for (LoraModule m : modules) {
    const size_t i = static_cast<size_t>(m);
    const int64_t width = projection_weight(l, m).size(0);  // the module's output columns in y
    if (l.lora_a[i].defined())
      y.slice(-1, column, column + width).add_(at::linear(at::linear(x, l.lora_a[i]), l.lora_b[i]), lora_.scale());
    column += width;
  }
}

at::Tensor LlamaModel::attention(const Layer& l, int64_t index, const at::Tensor& x, const at::Tensor& cos,
                                 const at::Tensor& sin, const at::Tensor& allowed,
                                 const ForwardInputs& in) const {
  const LlamaConfig& c = config_;
  const int64_t B = x.size(0), T = x.size(1), D = c.head_dim;
  const int64_t H = c.num_attention_heads, Hkv = c.num_key_value_heads;
  at::Tensor q, k, v;
  if (in.packed) {  // one GEMM for q, k and v
    at::Tensor qkv = packed_linear(x, in.packed->layers[static_cast<size_t>(index)].qkv);
    add_packed_adapters(l, {LoraModule::q_proj, LoraModule::k_proj, LoraModule::v_proj}, x, qkv, in);
    q = qkv.slice(-1, 0, H * D).view({B, T, H, D});
    k = qkv.slice(-1, H * D, (H + Hkv) * D).view({B, T, Hkv, D});
    v = qkv.slice(-1, (H + Hkv) * D).reshape({B, T, Hkv, D});
  } else {
    q = project(l, LoraModule::q_proj, x, l.q_proj, l.q_bias).view({B, T, H, D});      // [B,T,H,D]
    k = project(l, LoraModule::k_proj, x, l.k_proj, l.k_bias).view({B, T, Hkv, D});    // [B,T,Hkv,D]
    v = project(l, LoraModule::v_proj, x, l.v_proj, l.v_bias).view({B, T, Hkv, D});
  }
  if (l.q_norm.defined()) {  // Qwen3: normalise each head's query and key before rope
    q = rms_norm(q, l.q_norm, c.rms_norm_eps);
    k = rms_norm(k, l.k_norm, c.rms_norm_eps);
  }
  const int64_t past = past_length(in);
  const bool decode_step = in.cache && T == 1 && !in.record_prefix && decode_kernels_apply(q, cos);
  if (decode_step) {  // one loop: rotary on q and k, k and v into the cache (decode_kernels.h)
    KVCache& cache = *in.cache;
    q = rotate_into_cache(q, k, v, cos, sin, cache.keys[index], cache.values[index], past);
    k = cache.keys[index].slice(2, 0, past + T);
    v = cache.values[index].slice(2, 0, past + T);
  } else {
    q = q.transpose(1, 2);  // [B,H,T,D]
    k = k.transpose(1, 2);  // [B,Hkv,T,D]
    v = v.transpose(1, 2);
    q = q * cos + rotate_half(q) * sin;
    k = k * cos + rotate_half(k) * sin;
    if (in.record_prefix) {
      in.record_prefix->keys.push_back(k);
      in.record_prefix->values.push_back(v);
    }
    if (in.prefix) {  // index_select's backward sums every row's gradient into its prompt
      k = torch::cat({in.prefix->keys[index].index_select(0, in.prefix->rows), k}, 2);
      v = torch::cat({in.prefix->values[index].index_select(0, in.prefix->rows), v}, 2);
    } else if (in.cache) {
      KVCache& cache = *in.cache;
      cache.keys[index].slice(2, past, past + T).copy_(k);
      cache.values[index].slice(2, past, past + T).copy_(v);
      k = cache.keys[index].slice(2, 0, past + T);
      v = cache.values[index].slice(2, 0, past + T);
    }
  }
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  const bool observed = in.observer && in.observer->observes_layer(index);
  at::Tensor out;
  if (observed || T <= kExplicitAttentionMaxRows) {
    // Explicit softmax, chunk of query rows by chunk. Observed layers show each chunk's
    // probabilities to the observer and drop them; short decode steps take this path too,
    // since it needs no copy of the cache for grouped-query heads.
    const int64_t rows = observed ? std::max<int64_t>(1, in.observer->chunk_rows()) : T;
    const bool one_chunk = rows >= T;  // decode steps: the output is the one chunk's, no copy
    if (!one_chunk) out = torch::empty_like(q);
    at::Tensor value_norms;  // [B, H, keys]: what each key's value vector weighs, per query head
    if (observed && in.observer->wants_value_norms()) {
      torch::NoGradGuard no_grad;
      value_norms = v.detach().to(torch::kFloat).norm(2, -1);
      if (Hkv != H) value_norms = value_norms.repeat_interleave(H / Hkv, 1);
    }
    auto norms_for = [&](int64_t keys) { return value_norms.defined() ? value_norms.slice(2, 0, keys) : at::Tensor(); };
    if (observed && in.observer->surveys_layer(index)) {
      torch::NoGradGuard no_grad;  // the survey only feeds the observer, never the output
      for (int64_t r0 = 0; r0 < T; r0 += rows) {
        const int64_t r1 = std::min(T, r0 + rows), keys = past + r1;
        at::Tensor probs = attention_probabilities(q.slice(2, r0, r1), k.slice(2, 0, keys),
                                                   allowed.slice(2, r0, r1).slice(3, 0, keys), scale);
        in.observer->on_chunk(AttentionChunk{index, r0, past, probs, /*survey=*/true, norms_for(keys)});
      }
    }
    for (int64_t r0 = 0; r0 < T; r0 += rows) {
      const int64_t r1 = std::min(T, r0 + rows);
      // Keys after the chunk's last query are causally masked: leave them out (about half
      // the work of a full-width chunk).
      const int64_t keys = past + r1;
      at::Tensor probs = attention_probabilities(q.slice(2, r0, r1), k.slice(2, 0, keys),
                                                 allowed.slice(2, r0, r1).slice(3, 0, keys), scale);
      at::Tensor attended = attend(probs.to(q.scalar_type()), v.slice(2, 0, keys));
      if (one_chunk) out = attended;
      else out.slice(2, r0, r1).copy_(attended);
      if (observed) in.observer->on_chunk(AttentionChunk{index, r0, past, probs, /*survey=*/false, norms_for(keys)});
    }
  } else {
    out = at::scaled_dot_product_attention(q, k, v, allowed, 0.0, false, scale, /*enable_gqa=*/Hkv != H);
  }
  out = out.transpose(1, 2).reshape({B, T, H * D});
  if (in.packed) {
    at::Tensor y = packed_linear(out, in.packed->layers[static_cast<size_t>(index)].o);
    add_packed_adapters(l, {LoraModule::o_proj}, out, y, in);
    return y;
  }
  return project(l, LoraModule::o_proj, out, l.o_proj, l.o_bias);
}

at::Tensor LlamaModel::decoder_layer(int64_t i, const at::Tensor& x_in, const at::Tensor& cos, const at::Tensor& sin,
                                     const at::Tensor& allowed, const ForwardInputs& in) const {
  const Layer& l = layers_[static_cast<size_t>(i)];
  const double eps = config_.rms_norm_eps;
  const at::Tensor attended = attention(l, i, rms_norm(x_in, l.input_norm, eps), cos, sin, allowed, in);
  at::Tensor x = in.packed ? attended.add_(x_in) : x_in + attended;  // packed: inference, in place
  at::Tensor h = rms_norm(x, l.post_attention_norm, eps);
  if (in.packed) {  // one GEMM for gate and up
    const DecodeWeights::Layer& p = in.packed->layers[static_cast<size_t>(i)];
    at::Tensor gate_up = packed_linear(h, p.gate_up);
    add_packed_adapters(l, {LoraModule::gate_proj, LoraModule::up_proj}, h, gate_up, in);
    const int64_t I = config_.intermediate_size;
    // Inference only (packed weights): the product overwrites silu's buffer, and the residual
    // sum the down projection's.
    const at::Tensor gated = torch::silu(gate_up.slice(-1, 0, I)).mul_(gate_up.slice(-1, I));
    at::Tensor down = packed_linear(gated, p.down);
    add_packed_adapters(l, {LoraModule::down_proj}, gated, down, in);
    return down.add_(x);
  }
  const at::Tensor gated = torch::silu(project(l, LoraModule::gate_proj, h, l.gate_proj, l.gate_bias)) *
                           project(l, LoraModule::up_proj, h, l.up_proj, l.up_bias);
  return x + project(l, LoraModule::down_proj, gated, l.down_proj, l.down_bias);
}

// Activation checkpointing of one decoder layer: forward keeps the layer's input only; backward
// recomputes the layer (under the same autocast) and differentiates it. The layer's parameters
// are inputs so that their gradients flow as without checkpointing.
struct CheckpointedDecoderLayer : public torch::autograd::Function<CheckpointedDecoderLayer> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& cos,
                            const at::Tensor& sin, const at::Tensor& allowed, at::TensorList params,
                            const LlamaModel* model, int64_t layer) {
    ctx->save_for_backward({x, cos, sin, allowed});
    ctx->saved_data["model"] = reinterpret_cast<int64_t>(model);
    ctx->saved_data["layer"] = layer;
    torch::NoGradGuard no_grad;
    return model->decoder_layer(layer, x, cos, sin, allowed, ForwardInputs{});
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    const auto saved = ctx->get_saved_variables();
    const auto* model = reinterpret_cast<const LlamaModel*>(ctx->saved_data["model"].toInt());
    const int64_t layer = ctx->saved_data["layer"].toInt();
    at::Tensor x = saved[0].detach().requires_grad_(true);
    std::vector<at::Tensor> inputs = {x};
    // Frozen parameters (LoRA's base) get no gradient: only those that require one are inputs.
    const std::vector<at::Tensor> params = model->layer_parameters(layer);
    for (const at::Tensor& p : params)
      if (p.requires_grad()) inputs.push_back(p);
    at::Tensor y;
    {
      torch::AutoGradMode grad(true);
      const ComputeScope scope = model->compute_scope();
      y = model->decoder_layer(layer, x, saved[1], saved[2], saved[3], ForwardInputs{});
    }
    auto grads = torch::autograd::grad({y}, inputs, {grad_out[0]}, /*retain_graph=*/false, /*create_graph=*/false,
                                       /*allow_unused=*/true);
    // One entry per input of forward(): x, cos, sin, allowed, each parameter, model, layer.
    torch::autograd::variable_list out = {grads[0], at::Tensor(), at::Tensor(), at::Tensor()};
    size_t next = 1;
    for (const at::Tensor& p : params) out.push_back(p.requires_grad() ? grads[next++] : at::Tensor());
    out.push_back(at::Tensor());
    out.push_back(at::Tensor());
    return out;
  }
};

at::Tensor LlamaModel::hidden_states(const ForwardInputs& in) const {
  const LlamaConfig& c = config_;
  AR_CHECK(in.input_ids.dim() == 2, "forward: input_ids must be [B, T], got ", in.input_ids.sizes());
  const int64_t B = in.input_ids.size(0), T = in.input_ids.size(1);
  AR_CHECK(!(in.cache && in.prefix), "forward: a KV cache and a shared prefix cannot be combined");
  const int64_t past = past_length(in);
  if (in.prefix) {
    AR_CHECK(static_cast<int64_t>(in.prefix->keys.size()) == config_.num_hidden_layers &&
                 in.prefix->rows.dim() == 1 && in.prefix->rows.size(0) == B,
             "forward: the shared prefix must hold every layer's keys and one prompt index per row");
  }
  AR_CHECK(in.position_ids.sizes() == in.input_ids.sizes(), "forward: position_ids must be [", B, ", ", T,
           "], got ", in.position_ids.sizes());
  AR_CHECK(in.key_mask.dim() == 2 && in.key_mask.size(0) == B && in.key_mask.size(1) == past + T,
           "forward: key_mask must be [", B, ", ", past + T, "] (cached + new tokens), got ", in.key_mask.sizes());
  if (in.cache) {
    AR_CHECK(in.cache->batch_size() == B, "forward: KV cache holds ", in.cache->batch_size(), " rows, batch has ", B);
    AR_CHECK(past + T <= in.cache->capacity(), "forward: KV cache capacity ", in.cache->capacity(),
             " exceeded (", past, " cached + ", T, " new tokens)");
  }
  const auto dev = embed_tokens_.device();

  // allowed[b, 0, t, s]: key s is a real token at or before query t. The diagonal is always
  // allowed so that padded query rows have one finite score (their outputs are ignored).
  at::Tensor key_pos = torch::arange(past + T, torch::TensorOptions().dtype(torch::kLong).device(dev));
  at::Tensor query_pos = key_pos.slice(0, past).unsqueeze(1);  // [T, 1]
  at::Tensor causal = key_pos.unsqueeze(0) <= query_pos;        // [T, S]
  at::Tensor diagonal = key_pos.unsqueeze(0) == query_pos;
  at::Tensor allowed = (causal.unsqueeze(0) & in.key_mask.to(dev, torch::kBool).unsqueeze(1)) | diagonal.unsqueeze(0);
  allowed = allowed.unsqueeze(1);  // [B, 1, T, S]

  at::Tensor freqs = in.position_ids.to(dev, torch::kFloat).unsqueeze(-1) * inv_freq_;  // [B,T,D/2]
  at::Tensor emb = torch::cat({freqs, freqs}, -1);
  const auto dtype = compute_dtype_;  // rotary tables in the compute dtype (fp32 unless mixed)
  at::Tensor cos = emb.cos().to(dtype).unsqueeze(1);  // [B,1,T,D]
  at::Tensor sin = emb.sin().to(dtype).unsqueeze(1);

  const ComputeScope scope = compute_scope();
  const bool checkpoint = checkpoint_layers_ && at::GradMode::is_enabled() && !in.cache && !in.observer &&
                          !in.prefix && !in.record_prefix;
  at::Tensor x = at::embedding(input_embedding(), in.input_ids.to(dev));
  for (size_t i = 0; i < layers_.size(); ++i) {
    const int64_t index = static_cast<int64_t>(i);
    if (checkpoint) {
      const std::vector<at::Tensor> params = layer_parameters(index);
      // As a TensorList (not a vector) so that autograd registers each parameter as an input.
      x = CheckpointedDecoderLayer::apply(x, cos, sin, allowed, at::TensorList(params), this, index);
    } else {
      x = decoder_layer(index, x, cos, sin, allowed, in);
    }
  }
  if (in.cache) in.cache->length = past + T;
  return rms_norm(x, final_norm_, c.rms_norm_eps);
}

at::Tensor LlamaModel::logits(const at::Tensor& hidden, const DecodeWeights* packed) const {
  if (packed) return packed_linear(hidden, packed->lm_head);
  const at::Tensor head = output_weight();
  const ComputeScope scope = compute_scope();
  return at::linear(hidden, head).to(torch::kFloat);
}

at::Tensor LlamaModel::forward(const ForwardInputs& in) const { return logits(hidden_states(in), in.packed); }

std::shared_ptr<const DecodeWeights> LlamaModel::pack_for_decode(int64_t batch_hint, bool merge_adapters) const {
  if (!device().is_cpu() || embed_tokens_.scalar_type() != at::kFloat || compute_dtype_ != at::kFloat ||
      !packed_linear_available())
    return nullptr;
  torch::NoGradGuard no_grad;
  auto out = std::make_shared<DecodeWeights>();
  auto cat_bias = [](std::initializer_list<at::Tensor> parts) {
    for (const auto& t : parts)
      if (!t.defined()) return at::Tensor();
    return torch::cat(std::vector<at::Tensor>(parts));
  };
  // With adapters: a merged copy W + scale · B·A of each adapted weight (the parameters stay apart).
  const bool merge = has_lora() && adapters_enabled_ && merge_adapters;
  out->adapters_merged = !has_lora() || !adapters_enabled_ || merge_adapters;
  for (const Layer& l : layers_) {
    auto w = [&](LoraModule m, const at::Tensor& weight) {
      const size_t i = static_cast<size_t>(m);
      if (!merge || !l.lora_a[i].defined()) return weight;
      return weight + l.lora_b[i].mm(l.lora_a[i]).mul_(lora_.scale());
    };
    DecodeWeights::Layer p;
    p.qkv = pack_linear(torch::cat({w(LoraModule::q_proj, l.q_proj), w(LoraModule::k_proj, l.k_proj),
                                    w(LoraModule::v_proj, l.v_proj)}),
                        cat_bias({l.q_bias, l.k_bias, l.v_bias}), batch_hint);
    p.o = pack_linear(w(LoraModule::o_proj, l.o_proj), l.o_bias, batch_hint);
    p.gate_up = pack_linear(torch::cat({w(LoraModule::gate_proj, l.gate_proj), w(LoraModule::up_proj, l.up_proj)}),
                            cat_bias({l.gate_bias, l.up_bias}), batch_hint);
    p.down = pack_linear(w(LoraModule::down_proj, l.down_proj), l.down_bias, batch_hint);
    out->layers.push_back(std::move(p));
  }
  out->lm_head = pack_linear(output_weight(), at::Tensor(), batch_hint);
  return out;
}

}  // namespace anchor
