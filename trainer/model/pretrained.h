// Hugging Face model directories: config.json + model.safetensors (or shards with
// model.safetensors.index.json) + tokenizer.model (+ tokenizer_config.json).
// Loading checks every tensor name and shape against the config before copying anything.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <string>

#include "data/chat_template.h"
#include "trainer/model/llama_model.h"
#include "trainer/model/tokenizer.h"

namespace anchor {

// Weights are converted to options' dtype (f32/f16/bf16 on disk are all accepted).
LlamaModel load_model(const std::string& model_dir, const at::TensorOptions& options);

// Writes config.json and the weights (in their current dtype unless save_dtype is given);
// sharded when the weights exceed max_shard_bytes (0 = one file).
void save_model(const LlamaModel& model, const std::string& model_dir, uint64_t max_shard_bytes = 0,
                std::optional<at::ScalarType> save_dtype = std::nullopt);

// Model + tokenizer together: what `anchor-rl generate` and the trainers open.
struct Pretrained {
  LlamaModel model;
  Tokenizer tokenizer;
  std::string dir = "";       // where it was loaded from ("" when built in memory)
  std::string base_dir = "";  // with LoRA adapters: the base model directory they sit on
};
// A model directory, or an adapter directory (lora_config.h): its base model (checked against
// the recorded fingerprint) with the adapters added, and the adapter directory's tokenizer.
Pretrained load_pretrained(const std::string& model_dir, const at::TensorOptions& options);
// A model with adapters is saved as an adapter directory (PEFT's files + the base reference +
// the tokenizer), otherwise as a model directory.
void save_pretrained(const Pretrained& pretrained, const std::string& model_dir, uint64_t max_shard_bytes = 0);
// Adds adapters to a loaded base model (base_dir = its directory): fresh ones (`seed`).
void add_adapters(Pretrained& pretrained, const LoraSettings& settings, uint64_t seed);

// The chat template named by `spec` (data.template / --template; see data/chat_template.h):
// `auto` reads this model's own template. key names the setting in errors.
data::ChatTemplate chat_template_for(const Pretrained& pretrained, const std::string& spec, const std::string& key);
// The same from a tokenizer and the directory it was loaded from (no model needed).
data::ChatTemplate chat_template_for(const Tokenizer& tokenizer, const std::string& dir, const std::string& spec,
                                     const std::string& key);
// Whether `dir` holds a tokenizer (tokenizer.json or tokenizer.model).
bool has_tokenizer_files(const std::string& dir);
// Token ids of a rendered prompt, with the tokenizer's special tokens when the template wants
// them (plain formats, presets) and without when the template wrote them (auto).
std::vector<int64_t> encode_prompt(const Tokenizer& tokenizer, const data::ChatTemplate& chat, const std::string& text);

}  // namespace anchor
