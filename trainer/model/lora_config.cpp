#include "trainer/model/lora_config.h"

#include <xxhash.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include "trainer/common/error.h"
#include "trainer/common/file_util.h"

namespace anchor {
namespace fs = std::filesystem;

namespace {

constexpr LoraModule kAllModules[kLoraModuleCount] = {LoraModule::q_proj,    LoraModule::k_proj,  LoraModule::v_proj,
                                                      LoraModule::o_proj,    LoraModule::gate_proj, LoraModule::up_proj,
                                                      LoraModule::down_proj};

std::string accepted_names() {
  std::string out;
  for (LoraModule m : kAllModules) out += std::string(lora_module_name(m)) + ", ";
  return out + "all-linear";
}

// The header bytes of a safetensors file (its 8-byte length and JSON), without the data.
std::string safetensors_header_bytes(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  AR_CHECK(in.good(), file.string(), ": cannot open");
  unsigned char length_bytes[8] = {};
  in.read(reinterpret_cast<char*>(length_bytes), 8);
  AR_CHECK(in.gcount() == 8, file.string(), ": not a safetensors file (shorter than 8 bytes)");
  uint64_t length = 0;
  for (int i = 7; i >= 0; --i) length = (length << 8) | length_bytes[i];
  const uint64_t size = fs::file_size(file);
  AR_CHECK(length <= size - 8, file.string(), ": not a safetensors file (header length ", length, " > file size)");
  std::string header(length, '\0');
  in.read(header.data(), static_cast<std::streamsize>(length));
  return std::string(reinterpret_cast<const char*>(length_bytes), 8) + header;
}

}  // namespace

const char* lora_module_name(LoraModule m) {
  switch (m) {
    case LoraModule::q_proj: return "q_proj";
    case LoraModule::k_proj: return "k_proj";
    case LoraModule::v_proj: return "v_proj";
    case LoraModule::o_proj: return "o_proj";
    case LoraModule::gate_proj: return "gate_proj";
    case LoraModule::up_proj: return "up_proj";
    case LoraModule::down_proj: return "down_proj";
  }
  return "?";
}

const char* lora_module_parent(LoraModule m) {
  return static_cast<int>(m) <= static_cast<int>(LoraModule::o_proj) ? "self_attn" : "mlp";
}

bool LoraSettings::targets_module(LoraModule m) const {
  return std::find(targets.begin(), targets.end(), m) != targets.end();
}

std::vector<LoraModule> parse_lora_targets(const std::vector<std::string>& names, const std::string& key) {
  AR_CHECK(!names.empty(), key, ": name at least one linear layer (", accepted_names(), ")");
  std::set<int> chosen;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == "all-linear") {
      for (LoraModule m : kAllModules) chosen.insert(static_cast<int>(m));
      continue;
    }
    bool found = false;
    for (LoraModule m : kAllModules)
      if (names[i] == lora_module_name(m)) {
        chosen.insert(static_cast<int>(m));
        found = true;
      }
    AR_CHECK(found, key, "[", i, "]: '", names[i], "' is not a linear layer of a Llama-family decoder layer (",
             "expected one of ", accepted_names(), "; lm_head and embed_tokens take no adapters)");
  }
  std::vector<LoraModule> out;
  for (int m : chosen) out.push_back(static_cast<LoraModule>(m));
  return out;
}

std::string lora_tensor_name(int64_t layer, LoraModule module, char a_or_b) {
  return str_cat("base_model.model.model.layers.", layer, ".", lora_module_parent(module), ".", lora_module_name(module),
                 ".lora_", std::string(1, a_or_b), ".weight");
}

nlohmann::json lora_adapter_config(const LoraSettings& s, const std::string& base_path, bool tied) {
  nlohmann::json targets = nlohmann::json::array();
  for (LoraModule m : s.targets) targets.push_back(lora_module_name(m));
  nlohmann::json tokens = nullptr;
  if (!s.trainable_tokens.empty())
    tokens = tied ? nlohmann::json(s.trainable_tokens)
                  : nlohmann::json{{"embed_tokens", s.trainable_tokens}, {"lm_head", s.trainable_tokens}};
  return {{"peft_type", "LORA"},
          {"trainable_token_indices", tokens},
          {"task_type", "CAUSAL_LM"},
          {"base_model_name_or_path", base_path},
          {"r", s.rank},
          {"lora_alpha", s.alpha},
          {"lora_dropout", s.dropout},
          {"target_modules", targets},
          {"init_lora_weights", s.init == "gaussian" ? nlohmann::json("gaussian") : nlohmann::json(true)},
          {"bias", "none"},
          {"fan_in_fan_out", false},
          {"use_rslora", false},
          {"use_dora", false},
          {"modules_to_save", nullptr},
          {"inference_mode", true},
          {"revision", nullptr}};
}

LoraSettings parse_lora_adapter_config(const nlohmann::json& j, const std::string& path) {
  AR_CHECK(j.is_object(), path, ": expected a JSON object (PEFT's adapter_config.json)");
  AR_CHECK(j.value("peft_type", std::string()) == "LORA", path, ": peft_type must be \"LORA\", got ",
           j.contains("peft_type") ? j["peft_type"].dump() : std::string("nothing"));
  auto number = [&](const char* key) {
    AR_CHECK(j.contains(key) && j[key].is_number(), path, ": ", key, " must be a number");
    return j[key].get<double>();
  };
  LoraSettings s;
  AR_CHECK(j.contains("r") && j["r"].is_number_integer() && j["r"].get<int64_t>() >= 1, path,
           ": r must be an integer >= 1, got ", j.contains("r") ? j["r"].dump() : std::string("nothing"));
  s.rank = j["r"].get<int64_t>();
  s.alpha = number("lora_alpha");
  s.dropout = j.contains("lora_dropout") ? number("lora_dropout") : 0.0;
  AR_CHECK(s.dropout >= 0 && s.dropout < 1, path, ": lora_dropout must be in [0, 1), got ", s.dropout);
  std::vector<std::string> names;
  const nlohmann::json& t = j.contains("target_modules") ? j["target_modules"] : nlohmann::json();
  if (t.is_string()) names.push_back(t.get<std::string>());
  else if (t.is_array() && std::all_of(t.begin(), t.end(), [](const auto& x) { return x.is_string(); }))
    for (const auto& x : t) names.push_back(x.get<std::string>());
  else AR_FAIL(path, ": target_modules must be a list of module names or \"all-linear\", got ", t.dump());
  s.targets = parse_lora_targets(names, path + ": target_modules");
  if (j.contains("init_lora_weights") && j["init_lora_weights"].is_string()) s.init = j["init_lora_weights"];
  AR_CHECK(s.init == "kaiming" || s.init == "gaussian", path, ": init_lora_weights \"", s.init,
           "\" is not supported (true or \"gaussian\")");
  // PEFT options that change the computation: refused rather than silently ignored.
  auto refuse_true = [&](const char* key) {
    AR_CHECK(!j.contains(key) || j[key].is_null() || j[key] == false, path, ": ", key, " = ", j[key].dump(),
             " is not supported by anchor-rl (plain LoRA only)");
  };
  for (const char* key : {"use_rslora", "use_dora", "fan_in_fan_out", "lora_bias", "use_qalora"}) refuse_true(key);
  AR_CHECK(j.value("bias", std::string("none")) == "none", path, ": bias = ", j["bias"].dump(),
           " is not supported (adapters without bias only: \"none\")");
  if (j.contains("trainable_token_indices") && !j["trainable_token_indices"].is_null()) {
    // A list (the embedding, lm_head tied to it), or the same list for embed_tokens and lm_head.
    const nlohmann::json& t = j["trainable_token_indices"];
    auto ids_of = [&](const nlohmann::json& list) {
      AR_CHECK(list.is_array() && std::all_of(list.begin(), list.end(), [](const auto& x) {
                 return x.is_number_integer() && x.template get<int64_t>() >= 0;
               }), path, ": trainable_token_indices must list token ids, got ", list.dump());
      return list.get<std::vector<int64_t>>();
    };
    if (t.is_array()) {
      s.trainable_tokens = ids_of(t);
    } else {
      AR_CHECK(t.is_object() && t.contains("embed_tokens"), path,
               ": trainable_token_indices must be a list of ids or {\"embed_tokens\": ids, \"lm_head\": ids}, got ",
               t.dump());
      s.trainable_tokens = ids_of(t["embed_tokens"]);
      for (const auto& [module, list] : t.items())
        AR_CHECK((module == "embed_tokens" || module == "lm_head") && ids_of(list) == s.trainable_tokens, path,
                 ": trainable_token_indices: anchor-rl trains the same token rows of embed_tokens and lm_head, got ",
                 t.dump());
    }
  }
  for (const char* key : {"modules_to_save", "layers_to_transform", "exclude_modules", "target_parameters",
                          "layer_replication"})
    AR_CHECK(!j.contains(key) || j[key].is_null() || (j[key].is_array() && j[key].empty()), path, ": ", key, " = ",
             j[key].dump(), " is not supported by anchor-rl");
  for (const char* key : {"rank_pattern", "alpha_pattern"})
    AR_CHECK(!j.contains(key) || j[key].is_null() || (j[key].is_object() && j[key].empty()), path, ": ", key, " = ",
             j[key].dump(), " is not supported (one rank and alpha for every layer)");
  return s;
}

std::string base_model_fingerprint(const std::string& model_dir) {
  const fs::path dir(model_dir);
  const fs::path config = dir / "config.json";
  AR_CHECK(fs::exists(config), model_dir, ": no config.json (expected a Hugging Face model directory)");
  std::string bytes = "config.json\n" + read_text_file(config.string());
  std::vector<std::string> files;
  const fs::path index = dir / "model.safetensors.index.json";
  if (fs::exists(index)) {
    const nlohmann::json j = read_json_file(index.string());
    AR_CHECK(j.contains("weight_map") && j["weight_map"].is_object(), index.string(), ": no weight_map object");
    std::set<std::string> unique;
    for (const auto& [_, file] : j["weight_map"].items()) unique.insert(file.get<std::string>());
    files.assign(unique.begin(), unique.end());
  } else {
    AR_CHECK(fs::exists(dir / "model.safetensors"), model_dir, ": no model.safetensors or model.safetensors.index.json");
    files.push_back("model.safetensors");
  }
  for (const std::string& f : files)
    bytes += str_cat("\n", f, "\n", fs::file_size(dir / f), "\n", safetensors_header_bytes(dir / f));
  return xxh3_hex(XXH3_64bits(bytes.data(), bytes.size()));
}

bool is_adapter_directory(const std::string& dir) { return fs::exists(fs::path(dir) / kAdapterConfigFile); }

std::string adapter_base_directory(const std::string& adapter_dir) {
  const fs::path dir(adapter_dir);
  const fs::path reference = dir / kAdapterBaseFile;
  if (!fs::exists(reference)) {
    const fs::path config = dir / kAdapterConfigFile;
    const nlohmann::json j = read_json_file(config.string());
    const std::string base = j.value("base_model_name_or_path", std::string());
    AR_CHECK(!base.empty() && fs::is_directory(base), config.string(), ": base_model_name_or_path '", base,
             "' is not a local model directory (anchor-rl loads the base model from disk; no ", kAdapterBaseFile,
             " names one)");
    return base;
  }
  const nlohmann::json j = read_json_file(reference.string());
  AR_CHECK(j.is_object() && j.contains("path") && j["path"].is_string() && j.contains("fingerprint") &&
               j["fingerprint"].is_string(),
           reference.string(), ": expected {\"path\": ..., \"fingerprint\": ...}");
  const std::string base = j["path"].get<std::string>();
  AR_CHECK(fs::is_directory(base), reference.string(), ": the base model directory '", base,
           "' does not exist (the adapters were trained on it; restore it or merge the adapters elsewhere)");
  const std::string found = base_model_fingerprint(base);
  AR_CHECK(found == j["fingerprint"].get<std::string>(), reference.string(), ": the base model at '", base,
           "' has fingerprint ", found, " but the adapters were trained on fingerprint ",
           j["fingerprint"].get<std::string>(),
           " (a different config.json or weights files): these adapters do not belong to this base model");
  return base;
}

void write_adapter_base_reference(const std::string& adapter_dir, const std::string& base_dir) {
  const std::string absolute = fs::absolute(base_dir).lexically_normal().string();
  const nlohmann::json j = {{"path", absolute},
                            {"fingerprint", base_model_fingerprint(base_dir)},
                            {"fingerprint_of", "XXH3-64 of config.json and the weights files' names, sizes and "
                                               "safetensors headers"}};
  write_text_file_atomic((fs::path(adapter_dir) / kAdapterBaseFile).string(), j.dump(2) + "\n");
}

}  // namespace anchor
