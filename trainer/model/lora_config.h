// LoRA settings and the files of an adapter directory, in the layout Hugging Face PEFT reads
// (torch-free: the config layer and the memory plan use it too).
//
//   ADAPTER_DIR/adapter_config.json        PEFT's LoraConfig (peft_type LORA, r, lora_alpha, ...)
//   ADAPTER_DIR/adapter_model.safetensors  base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight, ...
//   ADAPTER_DIR/anchor_base_model.json     the base model directory and its fingerprint
//   ADAPTER_DIR/tokenizer files            as in a model directory
//
// An adapted linear layer computes W x + b + (alpha / rank) · B · A · dropout(x), with A
// [rank, in] and B [out, rank]; B starts at zero, so a fresh adapter leaves the model unchanged.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace anchor {

// The linear layers of a Llama-family decoder layer, in PEFT's spelling and this order.
enum class LoraModule { q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj };
constexpr int kLoraModuleCount = 7;
const char* lora_module_name(LoraModule m);
// "self_attn" or "mlp": the submodule that holds it in transformers' naming.
const char* lora_module_parent(LoraModule m);

struct LoraSettings {
  int64_t rank = 0;                // 0 = no adapters
  double alpha = 16.0;
  double dropout = 0.0;            // on the adapter's input only
  std::vector<LoraModule> targets; // expanded (all-linear = all seven)
  std::string init = "kaiming";    // kaiming (PEFT's default: A Kaiming-uniform, B 0) | gaussian (A ~ N(0, 1/rank))
  // Token ids whose embedding rows (and untied lm_head rows) train beside the adapters: SFT's
  // new control tokens (PEFT's trainable_token_indices; the rows are stored whole).
  std::vector<int64_t> trainable_tokens;
  double scale() const { return alpha / static_cast<double>(rank); }
  bool targets_module(LoraModule m) const;
};

// Names as written in model.lora.target_modules (PEFT's names, or "all-linear") -> modules.
// An unknown name is an error naming `key`[i] and the accepted names.
std::vector<LoraModule> parse_lora_targets(const std::vector<std::string>& names, const std::string& key);

// The safetensors key of one adapter matrix, as PEFT saves it (no adapter name):
// base_model.model.model.layers.{layer}.{self_attn|mlp}.{module}.lora_{A|B}.weight
std::string lora_tensor_name(int64_t layer, LoraModule module, char a_or_b);

// The trainable token rows' tensors, as PEFT saves them.
constexpr const char* kEmbedTokenRowsName = "base_model.model.model.embed_tokens.token_adapter.trainable_tokens_delta";
constexpr const char* kHeadTokenRowsName = "base_model.model.lm_head.token_adapter.trainable_tokens_delta";

// adapter_config.json: PEFT's LoraConfig fields for these settings. `base_path` becomes
// base_model_name_or_path; `tied`: the model ties lm_head to the embedding (trainable tokens
// are then listed for the embedding only, as PEFT does).
nlohmann::json lora_adapter_config(const LoraSettings& settings, const std::string& base_path, bool tied);
// Reads an adapter_config.json (ours or PEFT's): peft_type LORA, r, lora_alpha, lora_dropout,
// target_modules (a list or "all-linear"), init_lora_weights; options anchor-rl does not
// implement (use_rslora, use_dora, bias other than none, fan_in_fan_out, modules_to_save,
// layers_to_transform, rank_pattern / alpha_pattern) are errors naming `path` and the key.
LoraSettings parse_lora_adapter_config(const nlohmann::json& json, const std::string& path);

// A base model directory's fingerprint: XXH3-64 over config.json and each weights file's name,
// size and safetensors header (names, dtypes, shapes, offsets). Cheap, and it tells a different
// model or checkpoint layout apart; it does not read the weight values themselves.
std::string base_model_fingerprint(const std::string& model_dir);

constexpr const char* kAdapterConfigFile = "adapter_config.json";
constexpr const char* kAdapterWeightsFile = "adapter_model.safetensors";
constexpr const char* kAdapterBaseFile = "anchor_base_model.json";
// True when `dir` holds adapters (adapter_config.json) rather than full weights.
bool is_adapter_directory(const std::string& dir);

// The base model of an adapter directory: anchor_base_model.json's path, checked against its
// fingerprint (a mismatch is an error naming both files); without that file, PEFT's
// base_model_name_or_path when it is a local directory.
std::string adapter_base_directory(const std::string& adapter_dir);
// Writes anchor_base_model.json for `base_dir` into `adapter_dir`.
void write_adapter_base_reference(const std::string& adapter_dir, const std::string& base_dir);

}  // namespace anchor
