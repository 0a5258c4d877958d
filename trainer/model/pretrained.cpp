#include "trainer/model/pretrained.h"

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "trainer/common/error.h"
#include "trainer/common/file_util.h"
#include "trainer/model/safetensors.h"

namespace anchor {

LlamaModel load_model(const std::string& model_dir, const at::TensorOptions& options) {
  namespace fs = std::filesystem;
  AR_CHECK(fs::is_directory(model_dir), model_dir, ": not a model directory");
  AR_CHECK(fs::exists(fs::path(model_dir) / "config.json"), model_dir,
           ": no config.json (expected a Hugging Face model directory: config.json, *.safetensors, tokenizer.model)");
  LlamaConfig config = read_llama_config((fs::path(model_dir) / "config.json").string());
  const fs::path generation = fs::path(model_dir) / "generation_config.json";
  if (fs::exists(generation)) {
    config.generation = read_json_file(generation.string());
    AR_CHECK(config.generation.is_object(), generation.string(), ": expected a JSON object");
    if (config.generation.contains("eos_token_id")) {
      const auto& e = config.generation.at("eos_token_id");
      const bool ok = e.is_null() || e.is_number_integer() ||
                      (e.is_array() && std::all_of(e.begin(), e.end(), [](const auto& x) { return x.is_number_integer(); }));
      AR_CHECK(ok, generation.string(), ": eos_token_id must be a token id or a list of ids, got ", e.dump());
    }
  }
  const SafetensorsCheckpoint checkpoint(model_dir);

  // Build on CPU in float32, fill from the checkpoint, then move once.
  LlamaModel model(config, torch::TensorOptions().dtype(torch::kFloat));
  std::set<std::string> expected;
  model.for_each_parameter([&](const std::string& name, at::Tensor& param) {
    expected.insert(name);
    AR_CHECK(checkpoint.contains(name), model_dir, ": missing tensor '", name, "' (config.json describes a ",
             config.model_type, " model with ", config.num_hidden_layers, " layers",
             config.tie_word_embeddings ? ", tied embeddings" : "", ")");
    const SafetensorsEntry& entry = checkpoint.entry(name);
    AR_CHECK(entry.shape == param.sizes().vec(), checkpoint.file_of(name), ": tensor '", name, "' has shape ",
             at::IntArrayRef(entry.shape), " but config.json implies ", param.sizes());
    AR_CHECK(entry.dtype == "F32" || entry.dtype == "F16" || entry.dtype == "BF16", checkpoint.file_of(name),
             ": tensor '", name, "' has dtype ", entry.dtype, " (expected F32, F16 or BF16)");
    param.copy_(checkpoint.load(name).to(torch::kFloat));
  });
  for (const std::string& name : checkpoint.names()) {
    if (expected.count(name)) continue;
    // Tied checkpoints may still carry lm_head.weight (a copy of the embedding), and old
    // transformers versions saved the rotary table as a buffer: both are redundant.
    const bool redundant = (name == "lm_head.weight" && config.tie_word_embeddings) ||
                           name.find("rotary_emb.inv_freq") != std::string::npos;
    AR_CHECK(redundant, checkpoint.file_of(name), ": unexpected tensor '", name, "' (not part of a ",
             config.model_type, " model with this config.json)");
  }
  model.to(options);
  return model;
}

void save_model(const LlamaModel& model, const std::string& model_dir, uint64_t max_shard_bytes,
                std::optional<at::ScalarType> save_dtype) {
  namespace fs = std::filesystem;
  fs::create_directories(model_dir);
  NamedTensors tensors;
  for (auto& [name, t] : model.named_parameters()) {
    at::Tensor out = save_dtype ? t.detach().to(*save_dtype) : t.detach();
    tensors.emplace_back(name, out);
  }
  write_safetensors_checkpoint(model_dir, tensors, max_shard_bytes);
  LlamaConfig config = model.config();
  const auto type = tensors.empty() ? at::kFloat : tensors[0].second.scalar_type();
  const char* dtype = type == at::kBFloat16 ? "bfloat16" : type == at::kHalf ? "float16" : "float32";
  config.raw["dtype"] = dtype;        // transformers 5.x
  config.raw["torch_dtype"] = dtype;  // transformers 4.x
  write_llama_config(config, (fs::path(model_dir) / "config.json").string());
  if (!config.generation.empty())
    write_text_file_atomic((fs::path(model_dir) / "generation_config.json").string(), config.generation.dump(2) + "\n");
}

namespace {

// An adapter directory on its base model: names and shapes checked before anything is copied.
Pretrained load_adapters(const std::string& adapter_dir, const at::TensorOptions& options) {
  namespace fs = std::filesystem;
  const fs::path dir(adapter_dir);
  const std::string base = adapter_base_directory(adapter_dir);
  const fs::path config_path = dir / kAdapterConfigFile;
  const LoraSettings settings = parse_lora_adapter_config(read_json_file(config_path.string()), config_path.string());
  AR_CHECK(!is_adapter_directory(base), config_path.string(), ": the base model '", base,
           "' is itself an adapter directory (merge it first: anchor-rl export --merge)");
  Pretrained p{load_model(base, options), has_tokenizer_files(adapter_dir) ? Tokenizer::load(adapter_dir) : Tokenizer::load(base),
               adapter_dir, base};
  // Tokens added by SFT lie past the base vocabulary: grow it first (their rows are adapter rows).
  int64_t rows = p.tokenizer.vocab_size();
  for (int64_t id : settings.trainable_tokens) rows = std::max(rows, id + 1);
  if (rows > p.model.config().vocab_size) p.model.resize_vocab(rows, 0.0);
  p.model.add_lora(settings, 0);
  const fs::path weights = dir / kAdapterWeightsFile;
  AR_CHECK(fs::exists(weights), adapter_dir, ": no ", kAdapterWeightsFile, " beside ", kAdapterConfigFile);
  const SafetensorsFile file(weights.string());
  std::set<std::string> expected;
  torch::NoGradGuard no_grad;
  p.model.for_each_adapter([&](const std::string& name, at::Tensor& t) {
    expected.insert(name);
    AR_CHECK(file.contains(name), weights.string(), ": missing tensor '", name, "' (", config_path.string(),
             " names rank ", settings.rank, " adapters on this layer)");
    const at::Tensor stored = file.load(name);
    AR_CHECK(stored.sizes() == t.sizes(), weights.string(), ": tensor '", name, "' has shape ", stored.sizes(),
             " but the base model and r = ", settings.rank, " need ", t.sizes());
    t.copy_(stored.to(torch::kFloat));
  });
  for (const auto& [name, _] : file.entries())
    AR_CHECK(expected.count(name) > 0, weights.string(), ": unexpected tensor '", name,
             "' (not a LoRA matrix of the target modules in ", config_path.string(),
             "; anchor-rl reads plain LoRA adapters only)");
  AR_CHECK(p.tokenizer.vocab_size() <= p.model.config().vocab_size, adapter_dir, ": tokenizer has ",
           p.tokenizer.vocab_size(), " tokens but the base model's vocab_size is ", p.model.config().vocab_size);
  return p;
}

}  // namespace

Pretrained load_pretrained(const std::string& model_dir, const at::TensorOptions& options) {
  if (is_adapter_directory(model_dir)) return load_adapters(model_dir, options);
  Pretrained p{load_model(model_dir, options), Tokenizer::load(model_dir), model_dir};
  AR_CHECK(p.tokenizer.vocab_size() <= p.model.config().vocab_size, model_dir, ": tokenizer has ",
           p.tokenizer.vocab_size(), " tokens but config.json vocab_size is ", p.model.config().vocab_size);
  return p;
}

void add_adapters(Pretrained& p, const LoraSettings& settings, uint64_t seed) {
  AR_CHECK(!p.dir.empty(), "add_adapters: the base model must come from a directory (the adapters record it)");
  p.model.add_lora(settings, seed);
  p.base_dir = p.dir;
}

void save_pretrained(const Pretrained& p, const std::string& model_dir, uint64_t max_shard_bytes) {
  namespace fs = std::filesystem;
  if (!p.model.has_lora()) {
    save_model(p.model, model_dir, max_shard_bytes);
    p.tokenizer.save(model_dir);
    return;
  }
  AR_CHECK(!p.base_dir.empty(), "save_pretrained: a model with adapters needs its base model directory");
  fs::create_directories(model_dir);
  NamedTensors tensors;
  for (auto& [name, t] : p.model.adapter_parameters()) tensors.emplace_back(name, t.detach().to(torch::kFloat));
  write_safetensors((fs::path(model_dir) / kAdapterWeightsFile).string(), tensors, {{"format", "pt"}});
  const std::string base = fs::absolute(p.base_dir).lexically_normal().string();
  write_text_file_atomic((fs::path(model_dir) / kAdapterConfigFile).string(),
                         lora_adapter_config(p.model.lora(), base, p.model.config().tie_word_embeddings).dump(2) + "\n");
  write_adapter_base_reference(model_dir, p.base_dir);
  p.tokenizer.save(model_dir);
}

data::ChatTemplate chat_template_for(const Pretrained& p, const std::string& spec, const std::string& key) {
  return chat_template_for(p.tokenizer, p.dir, spec, key);
}

data::ChatTemplate chat_template_for(const Tokenizer& tokenizer, const std::string& dir, const std::string& spec,
                                     const std::string& key) {
  namespace fs = std::filesystem;
  const fs::path jinja = fs::path(dir) / "chat_template.jinja";
  const std::string source = dir.empty() ? std::string("the model")
                             : fs::exists(jinja) ? jinja.string()
                                                 : (fs::path(dir) / "tokenizer_config.json").string();
  const int64_t bos = tokenizer.bos_id();
  return data::ChatTemplate(spec, key, tokenizer.chat_template(), source, bos >= 0 ? tokenizer.id_to_piece(bos) : "");
}

bool has_tokenizer_files(const std::string& dir) {
  namespace fs = std::filesystem;
  return fs::exists(fs::path(dir) / "tokenizer.json") || fs::exists(fs::path(dir) / "tokenizer.model");
}

std::vector<int64_t> encode_prompt(const Tokenizer& tokenizer, const data::ChatTemplate& chat, const std::string& text) {
  return tokenizer.encode(text, chat.encode_with_special_tokens());
}

}  // namespace anchor
