// LlamaConfig: the architecture hyper-parameters of a Llama-family checkpoint (Llama, Mistral
// without sliding window, Qwen2, Qwen3), read from
// and written to Hugging Face's config.json (both the transformers 4.x keys rope_theta /
// rope_scaling and the 5.x rope_parameters block are understood).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace anchor {

enum class RopeType { default_rope, linear, llama3 };
const char* rope_type_name(RopeType type);

struct RopeParameters {
  RopeType type = RopeType::default_rope;
  double theta = 10000.0;
  double factor = 1.0;                          // linear, llama3
  double low_freq_factor = 1.0;                 // llama3
  double high_freq_factor = 4.0;                // llama3
  int64_t original_max_position_embeddings = 0; // llama3
};

struct LlamaConfig {
  std::string model_type = "llama";  // llama | mistral | qwen2 | qwen3
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  RopeParameters rope;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;     // Llama / Qwen3 attention_bias, always on for Qwen2
  bool o_proj_bias = false;  // Llama / Qwen3 attention_bias only
  bool qk_norm = false;      // Qwen3: RMSNorm over head_dim on every query and key head before rope
  bool mlp_bias = false;
  int64_t bos_token_id = -1;
  std::vector<int64_t> eos_token_ids;
  int64_t pad_token_id = -1;

  // The file as read, so that keys anchor-rl does not interpret survive a save.
  nlohmann::json raw = nlohmann::json::object();
  // generation_config.json of the model directory as read ({} when absent): its eos_token_id
  // (one id or a list) adds stop tokens; saved back next to config.json.
  nlohmann::json generation = nlohmann::json::object();

  int64_t num_query_groups() const { return num_attention_heads / num_key_value_heads; }
  // config.json eos_token_id(s) plus generation_config.json's, without repeats.
  std::vector<int64_t> stop_token_ids() const;
};

// Parses and validates; `source` (a path) is named in every error.
LlamaConfig parse_llama_config(const nlohmann::json& json, const std::string& source);
LlamaConfig read_llama_config(const std::string& path);
// The json written to config.json: `raw` updated with every interpreted field.
nlohmann::json llama_config_to_json(const LlamaConfig& config);
void write_llama_config(const LlamaConfig& config, const std::string& path);

}  // namespace anchor
