#include "trainer/model/llama_config.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <type_traits>
#include <filesystem>
#include <fstream>

#include "trainer/common/error.h"
#include "trainer/common/file_util.h"

namespace anchor {

const char* rope_type_name(RopeType type) {
  switch (type) {
    case RopeType::default_rope: return "default";
    case RopeType::linear: return "linear";
    case RopeType::llama3: return "llama3";
  }
  return "?";
}

namespace {

using nlohmann::json;

// json::get<integer> of a float is a static_cast: 2.5 would become 2 and 1e72 is undefined
// behaviour (found by tests/fuzz/fuzz_model_config). Integers must be integral and in range.
template <typename T>
T convert(const json& v) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    if (v.is_number_float()) {
      const double d = v.get<double>();
      if (!(d == std::floor(d) && d >= -9.0e18 && d <= 9.0e18)) throw std::invalid_argument("not an integer");
      return static_cast<T>(d);
    }
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
      throw std::invalid_argument("out of range");
  }
  return v.get<T>();
}

template <typename T>
T get_required(const json& j, const char* key, const std::string& source) {
  AR_CHECK(j.contains(key) && !j.at(key).is_null(), source, ": missing required key '", key, "'");
  try {
    return convert<T>(j.at(key));
  } catch (const std::exception&) {
    AR_FAIL(source, ": key '", key, "' has the wrong type (got ", j.at(key).dump(), ")");
  }
}

template <typename T>
T get_optional(const json& j, const char* key, T fallback, const std::string& source) {
  if (!j.contains(key) || j.at(key).is_null()) return fallback;
  try {
    return convert<T>(j.at(key));
  } catch (const std::exception&) {
    AR_FAIL(source, ": key '", key, "' has the wrong type (got ", j.at(key).dump(), ")");
  }
}

RopeParameters parse_rope(const json& j, const std::string& source) {
  RopeParameters rope;
  // transformers 5.x: everything in rope_parameters; 4.x: rope_theta + optional rope_scaling.
  json block = json::object();
  std::string where = "rope_scaling";
  if (j.contains("rope_parameters") && j.at("rope_parameters").is_object()) {
    block = j.at("rope_parameters");
    where = "rope_parameters";
    rope.theta = get_optional<double>(block, "rope_theta", get_optional<double>(j, "rope_theta", 10000.0, source), source);
  } else {
    rope.theta = get_optional<double>(j, "rope_theta", 10000.0, source);
    if (j.contains("rope_scaling") && j.at("rope_scaling").is_object()) block = j.at("rope_scaling");
  }
  std::string type = get_optional<std::string>(block, "rope_type", get_optional<std::string>(block, "type", "default", source), source);
  const std::string key = where + ".rope_type";
  if (type == "default") {
    rope.type = RopeType::default_rope;
  } else if (type == "linear") {
    rope.type = RopeType::linear;
    rope.factor = get_required<double>(block, "factor", source + " (" + where + ")");
  } else if (type == "llama3") {
    rope.type = RopeType::llama3;
    const std::string src = source + " (" + where + ")";
    rope.factor = get_required<double>(block, "factor", src);
    rope.low_freq_factor = get_required<double>(block, "low_freq_factor", src);
    rope.high_freq_factor = get_required<double>(block, "high_freq_factor", src);
    rope.original_max_position_embeddings = get_required<int64_t>(block, "original_max_position_embeddings", src);
    AR_CHECK(rope.high_freq_factor > rope.low_freq_factor, source, ": ", where,
             ".high_freq_factor must exceed low_freq_factor");
  } else {
    AR_FAIL(source, ": unsupported ", key, " '", type, "' (supported: default, linear, llama3)");
  }
  AR_CHECK(rope.theta > 0, source, ": rope_theta must be positive, got ", rope.theta);
  AR_CHECK(rope.factor > 0, source, ": ", where, ".factor must be positive, got ", rope.factor);
  return rope;
}

}  // namespace

LlamaConfig parse_llama_config(const json& j, const std::string& source) {
  AR_CHECK(j.is_object(), source, ": expected a JSON object");
  LlamaConfig c;
  c.raw = j;
  c.model_type = get_optional<std::string>(j, "model_type", "llama", source);
  AR_CHECK(c.model_type == "llama" || c.model_type == "mistral" || c.model_type == "qwen2" || c.model_type == "qwen3",
           source, ": unsupported architecture model_type='", c.model_type,
           "' (supported: llama, mistral, qwen2, qwen3 — Llama-family decoders)");
  if (j.contains("architectures") && j.at("architectures").is_array()) {
    for (const auto& arch : j.at("architectures")) {
      const std::string name = arch.is_string() ? arch.get<std::string>() : arch.dump();
      AR_CHECK(name == "LlamaForCausalLM" || name == "MistralForCausalLM" || name == "Qwen2ForCausalLM" ||
                   name == "Qwen3ForCausalLM",
               source, ": unsupported architecture '", name,
               "' (supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM)");
    }
  }
  const std::string act = get_optional<std::string>(j, "hidden_act", "silu", source);
  AR_CHECK(act == "silu", source, ": unsupported hidden_act '", act, "' (only silu / SwiGLU)");
  if (get_optional<bool>(j, "use_sliding_window", false, source) ||
      (c.model_type == "mistral" && !get_optional<json>(j, "sliding_window", json(), source).is_null())) {
    AR_FAIL(source, ": sliding-window attention is not supported (set sliding_window to null)");
  }
  if (j.contains("layer_types") && j.at("layer_types").is_array()) {
    for (const auto& type : j.at("layer_types"))
      AR_CHECK(type == "full_attention", source, ": layer_types entry ", type.dump(),
               " is not supported (only full_attention)");
  }

  c.vocab_size = get_required<int64_t>(j, "vocab_size", source);
  c.hidden_size = get_required<int64_t>(j, "hidden_size", source);
  c.intermediate_size = get_required<int64_t>(j, "intermediate_size", source);
  c.num_hidden_layers = get_required<int64_t>(j, "num_hidden_layers", source);
  c.num_attention_heads = get_required<int64_t>(j, "num_attention_heads", source);
  c.num_key_value_heads = get_optional<int64_t>(j, "num_key_value_heads", c.num_attention_heads, source);
  AR_CHECK(c.num_attention_heads > 0, source, ": num_attention_heads must be positive");
  c.head_dim = get_optional<int64_t>(j, "head_dim", c.hidden_size / c.num_attention_heads, source);
  c.max_position_embeddings = get_optional<int64_t>(j, "max_position_embeddings", 2048, source);
  c.rms_norm_eps = get_optional<double>(j, "rms_norm_eps", 1e-6, source);
  c.rope = parse_rope(j, source);
  c.tie_word_embeddings = get_optional<bool>(j, "tie_word_embeddings", false, source);
  const bool attention_bias = get_optional<bool>(j, "attention_bias", false, source);
  c.qkv_bias = c.model_type == "qwen2" ? true : attention_bias;
  c.o_proj_bias = c.model_type == "qwen2" ? false : attention_bias;
  c.qk_norm = c.model_type == "qwen3";
  c.mlp_bias = get_optional<bool>(j, "mlp_bias", false, source);
  c.bos_token_id = get_optional<int64_t>(j, "bos_token_id", -1, source);
  c.pad_token_id = get_optional<int64_t>(j, "pad_token_id", -1, source);
  if (j.contains("eos_token_id") && !j.at("eos_token_id").is_null()) {
    const json& eos = j.at("eos_token_id");
    if (eos.is_array()) {
      c.eos_token_ids = get_required<std::vector<int64_t>>(j, "eos_token_id", source);
    } else {
      c.eos_token_ids = {get_required<int64_t>(j, "eos_token_id", source)};
    }
  }

  AR_CHECK(c.vocab_size > 0 && c.hidden_size > 0 && c.intermediate_size > 0 && c.num_hidden_layers > 0,
           source, ": vocab_size, hidden_size, intermediate_size and num_hidden_layers must be positive");
  AR_CHECK(c.num_key_value_heads > 0 && c.num_attention_heads % c.num_key_value_heads == 0, source,
           ": num_attention_heads (", c.num_attention_heads, ") must be a multiple of num_key_value_heads (",
           c.num_key_value_heads, ")");
  AR_CHECK(c.head_dim > 0 && c.head_dim % 2 == 0, source, ": head_dim must be a positive even number, got ",
           c.head_dim);
  AR_CHECK(c.rms_norm_eps > 0, source, ": rms_norm_eps must be positive");
  return c;
}

std::vector<int64_t> LlamaConfig::stop_token_ids() const {
  std::vector<int64_t> ids = eos_token_ids;
  if (generation.is_object() && generation.contains("eos_token_id")) {
    const nlohmann::json& e = generation.at("eos_token_id");
    for (const auto& id : e.is_array() ? e : nlohmann::json::array({e}))
      if (id.is_number_integer() && std::find(ids.begin(), ids.end(), id.get<int64_t>()) == ids.end())
        ids.push_back(id.get<int64_t>());
  }
  return ids;
}

LlamaConfig read_llama_config(const std::string& path) {
  return parse_llama_config(read_json_file(path), path);
}

nlohmann::json llama_config_to_json(const LlamaConfig& c) {
  json j = c.raw;
  j["model_type"] = c.model_type;
  if (!j.contains("architectures")) {
    j["architectures"] = {c.model_type == "qwen2"     ? "Qwen2ForCausalLM"
                          : c.model_type == "qwen3"   ? "Qwen3ForCausalLM"
                          : c.model_type == "mistral" ? "MistralForCausalLM"
                                                      : "LlamaForCausalLM"};
  }
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["num_hidden_layers"] = c.num_hidden_layers;
  j["num_attention_heads"] = c.num_attention_heads;
  j["num_key_value_heads"] = c.num_key_value_heads;
  j["head_dim"] = c.head_dim;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["hidden_act"] = "silu";
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  if (c.model_type != "qwen2") j["attention_bias"] = c.qkv_bias;
  j["mlp_bias"] = c.mlp_bias;
  if (c.bos_token_id >= 0) j["bos_token_id"] = c.bos_token_id;
  if (c.eos_token_ids.size() == 1) j["eos_token_id"] = c.eos_token_ids[0];
  else if (!c.eos_token_ids.empty()) j["eos_token_id"] = c.eos_token_ids;
  if (c.pad_token_id >= 0) j["pad_token_id"] = c.pad_token_id;
  // Written in the transformers 5.x layout, which 4.x also reads back (rope_theta kept too).
  json rope = {{"rope_type", rope_type_name(c.rope.type)}, {"rope_theta", c.rope.theta}};
  if (c.rope.type != RopeType::default_rope) rope["factor"] = c.rope.factor;
  if (c.rope.type == RopeType::llama3) {
    rope["low_freq_factor"] = c.rope.low_freq_factor;
    rope["high_freq_factor"] = c.rope.high_freq_factor;
    rope["original_max_position_embeddings"] = c.rope.original_max_position_embeddings;
  }
  j.erase("rope_scaling");
  j["rope_parameters"] = rope;
  j["rope_theta"] = c.rope.theta;
  return j;
}

void write_llama_config(const LlamaConfig& config, const std::string& path) {
  write_text_file_atomic(path, llama_config_to_json(config).dump(2) + "\n");
}

}  // namespace anchor
