#include "trainer/config/train_config.h"

#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <filesystem>
#include <functional>
#include <map>
#include <regex>
#include <set>

#include "trainer/common/error.h"
#include "trainer/common/file_util.h"

namespace anchor {
namespace {

nlohmann::json yaml_to_json(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null: return nullptr;
    case YAML::NodeType::Sequence: {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& item : node) out.push_back(yaml_to_json(item));
      return out;
    }
    case YAML::NodeType::Map: {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& kv : node) out[kv.first.as<std::string>()] = yaml_to_json(kv.second);
      return out;
    }
    default: {
      const std::string s = node.Scalar();
      if (node.Tag() != "!") {  // unquoted scalars: try bool, integer, float
        bool b;
        int64_t i;
        double d;
        if (YAML::convert<bool>::decode(node, b)) return b;
        if (YAML::convert<int64_t>::decode(node, i)) return i;
        if (YAML::convert<double>::decode(node, d)) return d;
      }
      return s;
    }
  }
}

void json_to_yaml(YAML::Emitter& out, const nlohmann::json& j) {
  if (j.is_object()) {
    out << YAML::BeginMap;
    for (const auto& [k, v] : j.items()) {
      out << YAML::Key << k << YAML::Value;
      json_to_yaml(out, v);
    }
    out << YAML::EndMap;
  } else if (j.is_array()) {
    out << YAML::Flow << YAML::BeginSeq;
    for (const auto& v : j) json_to_yaml(out, v);
    out << YAML::EndSeq;
  } else if (j.is_string()) {
    out << YAML::DoubleQuoted << j.get<std::string>();
  } else if (j.is_null()) {
    out << YAML::Null;
  } else {
    out << j.dump();
  }
}

std::string mark_of(const YAML::Node& node) {
  const YAML::Mark m = node.Mark();
  return m.line >= 0 ? str_cat(" (line ", m.line + 1, ")") : "";
}

// Fills config fields from a YAML mapping; remembers which keys it used.
class Reader {
 public:
  Reader(const YAML::Node& node, std::string path, std::string source)
      : node_(node), path_(std::move(path)), source_(std::move(source)) {
    AR_CHECK(!node_.IsDefined() || node_.IsNull() || node_.IsMap(), source_, ": '", path_,
             "' must be a mapping of keys to values", mark_of(node_));
  }

  template <class Section>
  void section(const char* key, Section& section) {
    used_.insert(key);
    Reader inner(node_.IsMap() ? node_[key] : YAML::Node(), path_.empty() ? key : path_ + "." + key, source_);
    inner.origins_ = origins_;
    section.visit(inner);
    inner.finish();
  }

  template <class T>
  void operator()(const char* key, T& field) {
    used_.insert(key);
    if (!node_.IsMap()) return;
    const YAML::Node value = node_[key];
    if (!value.IsDefined() || value.IsNull()) return;
    read(value, path_ + "." + key, field);
  }

  // Where each section and key came from (" (line N)", or " (FILE line N)" for a key set in a
  // `base:` file); merged configs lose the parser's marks, so errors look the key up here.
  void set_origins(const std::map<std::string, std::string>* origins) { origins_ = origins; }

  void finish() const {
    if (!node_.IsMap()) return;
    for (const auto& kv : node_) {
      const std::string key = kv.first.as<std::string>();
      if (used_.count(key)) continue;
      std::string allowed;
      for (const auto& k : used_) allowed += (allowed.empty() ? "" : ", ") + k;
      const std::string full = path_.empty() ? key : path_ + "." + key;
      AR_FAIL(source_, ": unknown key '", full, "'", where(full, kv.first),
              " (allowed: ", allowed, ")");
    }
  }

 private:
  template <class T>
  void scalar(const YAML::Node& value, const std::string& key, T& field, const char* expected) {
    AR_CHECK(value.IsScalar(), source_, ": ", key, " must be ", expected, where(key, value));
    try {
      field = value.as<T>();
    } catch (const YAML::Exception&) {
      AR_FAIL(source_, ": ", key, " must be ", expected, ", got '", value.Scalar(), "'", where(key, value));
    }
  }
  void read(const YAML::Node& v, const std::string& key, bool& f) { scalar(v, key, f, "true or false"); }
  void read(const YAML::Node& v, const std::string& key, int64_t& f) { scalar(v, key, f, "an integer"); }
  void read(const YAML::Node& v, const std::string& key, uint64_t& f) { scalar(v, key, f, "a non-negative integer"); }
  void read(const YAML::Node& v, const std::string& key, double& f) {
    scalar(v, key, f, "a number");
    AR_CHECK(std::isfinite(f), source_, ": ", key, " must be a finite number, got '", v.Scalar(), "'", where(key, v));
  }
  void read(const YAML::Node& v, const std::string& key, std::string& f) { scalar(v, key, f, "a string"); }
  void read(const YAML::Node& v, const std::string& key, std::vector<std::string>& f) {
    AR_CHECK(v.IsSequence(), source_, ": ", key, " must be a list of strings", where(key, v));
    f.clear();
    for (size_t i = 0; i < v.size(); ++i) {
      std::string s;
      scalar(v[i], key + "[" + std::to_string(i) + "]", s, "a string");
      f.push_back(s);
    }
  }
  void read(const YAML::Node& v, const std::string& key, credit::LayerSelection& f) {
    if (v.IsScalar()) {
      f.mode = v.Scalar();
      f.layers.clear();
      AR_CHECK(f.mode == "default" || f.mode == "all" || f.mode == "auto", source_, ": ", key,
               " must be default, all, auto or a list of layer indices, got '", f.mode, "'", where(key, v));
      return;
    }
    AR_CHECK(v.IsSequence() && v.size() > 0, source_, ": ", key,
             " must be default, all, auto or a non-empty list of layer indices", where(key, v));
    f.mode = "list";
    f.layers.clear();
    for (size_t i = 0; i < v.size(); ++i) {
      int64_t layer = 0;
      scalar(v[i], key + "[" + std::to_string(i) + "]", layer, "a layer index (integer)");
      f.layers.push_back(layer);
    }
  }
  void read(const YAML::Node& v, const std::string& key, std::vector<RewardComponentConfig>& f) {
    AR_CHECK(v.IsSequence(), source_, ": ", key, " must be a list of {name, weight, ...params}", where(key, v));
    f.clear();
    for (size_t i = 0; i < v.size(); ++i) {
      const std::string item = key + "[" + std::to_string(i) + "]";
      AR_CHECK(v[i].IsMap() && v[i]["name"], source_, ": ", item, " needs a 'name'", mark_of(v[i]));
      RewardComponentConfig c;
      scalar(v[i]["name"], item + ".name", c.name, "a string");
      if (v[i]["weight"]) read(v[i]["weight"], item + ".weight", c.weight);
      for (const auto& kv : v[i]) {
        const std::string k = kv.first.as<std::string>();
        if (k != "name" && k != "weight") c.params[k] = yaml_to_json(kv.second);
      }
      f.push_back(std::move(c));
    }
  }

  YAML::Node node_;
  std::string path_;
  std::string source_;
  std::set<std::string> used_;
  const std::map<std::string, std::string>* origins_ = nullptr;

  std::string where(const std::string& key, const YAML::Node& node) const {
    if (origins_ != nullptr)
      if (const auto it = origins_->find(key); it != origins_->end()) return it->second;
    return mark_of(node);
  }
};

// Emits every field (defaults included) in visit() order.
class Writer {
 public:
  explicit Writer(YAML::Emitter& out) : out_(out) {}
  template <class Section>
  void section(const char* key, Section& section) {
    out_ << YAML::Key << key << YAML::Value << YAML::BeginMap;
    section.visit(*this);
    out_ << YAML::EndMap;
  }
  template <class T>
  void operator()(const char* key, const T& field) {
    out_ << YAML::Key << key << YAML::Value;
    write(field);
  }

 private:
  void write(bool v) { out_ << (v ? "true" : "false"); }
  void write(int64_t v) { out_ << v; }
  void write(uint64_t v) { out_ << v; }
  void write(double v) { out_ << nlohmann::json(v).dump(); }  // shortest round-trip form
  void write(const std::string& v) { out_ << YAML::DoubleQuoted << v; }
  void write(const std::vector<std::string>& v) {
    out_ << YAML::Flow << YAML::BeginSeq;
    for (const auto& s : v) out_ << YAML::DoubleQuoted << s;
    out_ << YAML::EndSeq;
  }
  void write(const credit::LayerSelection& v) {
    if (v.mode != "list") {
      out_ << v.mode;
      return;
    }
    out_ << YAML::Flow << YAML::BeginSeq;
    for (int64_t l : v.layers) out_ << l;
    out_ << YAML::EndSeq;
  }
  void write(const std::vector<RewardComponentConfig>& v) {
    out_ << YAML::BeginSeq;
    for (const auto& c : v) {
      out_ << YAML::BeginMap << YAML::Key << "name" << YAML::Value << c.name << YAML::Key << "weight"
           << YAML::Value << nlohmann::json(c.weight).dump();
      for (const auto& [k, p] : c.params.items()) {
        out_ << YAML::Key << k << YAML::Value;
        json_to_yaml(out_, p);
      }
      out_ << YAML::EndMap;
    }
    out_ << YAML::EndSeq;
  }
  YAML::Emitter& out_;
};

void apply_override(YAML::Node& root, const std::string& assignment) {
  const size_t eq = assignment.find('=');
  AR_CHECK(eq != std::string::npos && eq > 0, "--set '", assignment, "': expected section.key=value");
  const std::string path = assignment.substr(0, eq);
  const std::string value = assignment.substr(eq + 1);
  std::vector<std::string> parts;
  for (size_t begin = 0;;) {
    const size_t dot = path.find('.', begin);
    parts.push_back(path.substr(begin, dot == std::string::npos ? std::string::npos : dot - begin));
    if (dot == std::string::npos) break;
    begin = dot + 1;
  }
  bool named = parts.size() >= 2;
  for (const auto& p : parts) named = named && !p.empty();
  AR_CHECK(named, "--set '", assignment, "': the key must be section.key (e.g. optim.lr=1e-4) or "
           "section.subsection.key (e.g. sft.conditional.threshold=0.5)");
  YAML::Node parsed;
  try {
    parsed = YAML::Load(value);
  } catch (const YAML::Exception& e) {
    AR_FAIL("--set '", assignment, "': the value is not valid YAML (", e.what(), ")");
  }
  // yaml-cpp nodes are handles: walking with `node = node[k]` would rebind, not descend, so
  // the parent chain is kept and the leaf assigned through its parent.
  std::vector<YAML::Node> chain{root};
  std::string where;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    where += (where.empty() ? "" : ".") + parts[i];
    YAML::Node child = chain.back()[parts[i]];
    if (!child || child.IsNull()) {
      chain.back()[parts[i]] = YAML::Node(YAML::NodeType::Map);
      child = chain.back()[parts[i]];
    }
    AR_CHECK(child.IsMap(), "--set '", assignment, "': '", where, "' is not a mapping");
    chain.push_back(child);
  }
  chain.back()[parts.back()] = parsed;
}

void check_one_of(const std::string& key, const std::string& value, std::initializer_list<const char*> allowed) {
  std::string list;
  for (const char* a : allowed) {
    if (value == a) return;
    list += (list.empty() ? "" : ", ") + std::string(a);
  }
  AR_FAIL(key, ": '", value, "' is not allowed (expected one of: ", list, ")");
}

}  // namespace

namespace {

// YAML parsers keep a repeated key and lookups return its first value, so a second
// `max_new_tokens:` or a second `optim:` section would be ignored without a word.
void reject_duplicate_keys(const YAML::Node& node, const std::string& path, const std::string& source) {
  if (node.IsSequence()) {
    for (size_t i = 0; i < node.size(); ++i) reject_duplicate_keys(node[i], str_cat(path, "[", i, "]"), source);
    return;
  }
  if (!node.IsMap()) return;
  std::map<std::string, YAML::Mark> seen;
  for (const auto& kv : node) {
    // `? [a, b]: x` makes a key of a list or mapping; every reader below expects names.
    AR_CHECK(kv.first.IsScalar(), source, ":", kv.first.Mark().line + 1, ": a key must be a plain name",
             path.empty() ? "" : " (in '" + path + "')", ", not a list or mapping");
    const std::string key = kv.first.Scalar();
    const std::string full = path.empty() ? key : path + "." + key;
    const auto [it, fresh] = seen.emplace(key, kv.first.Mark());
    AR_CHECK(fresh, source, ": key '", full, "' appears twice (lines ", it->second.line + 1, " and ",
             kv.first.Mark().line + 1, "); keep one");
    reject_duplicate_keys(kv.second, full, source);
  }
}

// Origins of every section and section.key of one file's tree (before any merge).
void collect_origins(const YAML::Node& root, const std::string& file, bool top_file,
                     std::map<std::string, std::string>& origins) {
  if (!root.IsMap()) return;
  auto at = [&](const YAML::Node& key) {
    const int line = key.Mark().line + 1;
    return top_file ? str_cat(" (line ", line, ")") : str_cat(" (", file, " line ", line, ")");
  };
  // Every key at any depth, by its dotted path (sections nest: sft.conditional.threshold).
  std::function<void(const YAML::Node&, const std::string&)> walk = [&](const YAML::Node& map,
                                                                     const std::string& prefix) {
    for (const auto& kv : map) {
      const std::string name = prefix.empty() ? kv.first.Scalar() : prefix + "." + kv.first.Scalar();
      origins[name] = at(kv.first);
      if (kv.second.IsMap()) walk(kv.second, name);
    }
  };
  walk(root, "");
}

YAML::Node parse_yaml(const std::string& yaml_text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::ParserException& e) {
    AR_FAIL(source, ":", e.mark.line + 1, ":", e.mark.column + 1, ": invalid YAML (", e.msg, ")");
  }
  if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  AR_CHECK(root.IsMap(), source, ": the top level must be a mapping of sections");
  reject_duplicate_keys(root, "", source);
  return root;
}

// `over` on top of `base`: mappings merge key by key, anything else replaces.
YAML::Node merge_yaml(const YAML::Node& base, const YAML::Node& over) {
  if (!base.IsMap() || !over.IsMap()) return YAML::Clone(over);
  YAML::Node out = YAML::Clone(base);
  for (const auto& kv : over) {
    const std::string key = kv.first.as<std::string>();
    out[key] = out[key] ? merge_yaml(out[key], kv.second) : YAML::Clone(kv.second);
  }
  return out;
}

// A config file with an optional top-level `base: other.yaml` (relative to the file), whose
// sections it overrides key by key; bases may chain.
YAML::Node load_yaml_with_base(const std::string& path, std::string& source, int depth,
                               std::map<std::string, std::string>& origins) {
  AR_CHECK(depth < 8, path, ": 'base' chains more than 8 files deep (a cycle?)");
  YAML::Node root = parse_yaml(read_text_file(path), path);
  if (!root["base"]) {
    collect_origins(root, path, depth == 0, origins);
    return root;
  }
  AR_CHECK(root["base"].IsScalar(), path, ": base must be a path to another config file", mark_of(root["base"]));
  const std::string base_path =
      (std::filesystem::path(path).parent_path() / root["base"].Scalar()).lexically_normal().string();
  root.remove("base");
  source += str_cat(" (base ", base_path, ")");
  YAML::Node base = load_yaml_with_base(base_path, source, depth + 1, origins);
  collect_origins(root, path, depth == 0, origins);  // this file's keys win over its base's
  return merge_yaml(base, root);
}

TrainConfig config_from_yaml(YAML::Node root, const std::string& source, const std::vector<std::string>& overrides,
                             ConfigUse use, std::map<std::string, std::string> origins) {
  for (const auto& o : overrides) apply_override(root, o);
  TrainConfig config;
  Reader reader(root, "", source);
  for (const auto& o : overrides) origins[o.substr(0, o.find('='))] = " (--set)";
  reader.set_origins(&origins);
  config.visit(reader);
  reader.finish();
  // "~/" at the start of model.path is the home directory (scripts/get_model.sh caches models
  // under ~/.cache/anchor-rl/models); the resolved config records the expanded path.
  const char* home = std::getenv("HOME");
  if (config.model.path.rfind("~/", 0) == 0 && home) config.model.path = std::string(home) + config.model.path.substr(1);
  try {
    validate_train_config(config, use);
  } catch (const Error& e) {
    // Range checks run on the filled struct; name the file and the line the key came from.
    static const std::regex located(R"(^\S+\.cpp:\d+: (([a-z_]+(?:\.[a-z_]+)+)\S*[: ].*)$)");
    std::smatch m;
    const std::string what = e.what();
    if (!std::regex_match(what, m, located)) throw;
    const auto it = origins.find(m[2].str());
    AR_FAIL(source, ": ", m[1].str(), it != origins.end() ? it->second : " (default value)");
  }
  return config;
}

}  // namespace

TrainConfig parse_train_config(const std::string& yaml_text, const std::string& source,
                               const std::vector<std::string>& overrides, ConfigUse use) {
  YAML::Node root = parse_yaml(yaml_text, source);
  std::map<std::string, std::string> origins;
  collect_origins(root, source, true, origins);
  return config_from_yaml(root, source, overrides, use, std::move(origins));
}

TrainConfig load_train_config(const std::string& path, const std::vector<std::string>& overrides, ConfigUse use) {
  std::string source = path;
  std::map<std::string, std::string> origins;
  YAML::Node root = load_yaml_with_base(path, source, 0, origins);
  return config_from_yaml(root, source, overrides, use, std::move(origins));
}

std::string train_config_to_yaml(const TrainConfig& config) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  Writer writer(out);
  const_cast<TrainConfig&>(config).visit(writer);
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

std::string train_config_hash(const TrainConfig& config) {
  TrainConfig copy = config;
  copy.logging = LoggingSection{};  // where a run writes does not change what it computes
  copy.distributed = DistributedSection{};  // nor how long a collective may wait
  uint64_t h = 1469598103934665603ull;  // FNV-1a 64
  for (unsigned char c : train_config_to_yaml(copy)) h = (h ^ c) * 1099511628211ull;
  char out[17];
  std::snprintf(out, sizeof(out), "%016llx", static_cast<unsigned long long>(h));
  return out;
}

void validate_train_config(const TrainConfig& c, ConfigUse use) {
  if (use == ConfigUse::credit) {
    credit::validate_credit_options(c.credit);
    return;
  }
  AR_CHECK(!c.model.path.empty(), "model.path: required (a Hugging Face model directory)");
  check_one_of("model.dtype", c.model.dtype, {"auto", "float32", "bfloat16"});
  AR_CHECK(c.model.threads >= 0, "model.threads: must be >= 0, got ", c.model.threads);
  AR_CHECK(!c.data.train.empty(), "data.train: required (a JSONL file of prompts)");
  AR_CHECK(c.data.eval_limit >= 0, "data.eval_limit: must be >= 0");
  AR_CHECK(c.data.max_prompt_tokens >= 0, "data.max_prompt_tokens: must be >= 0 (0 = the model's positions minus "
           "rollout.max_new_tokens), got ", c.data.max_prompt_tokens);
  check_one_of("data.too_long_prompts", c.data.too_long_prompts, {"error", "skip"});
  AR_CHECK(c.rollout.prompts_per_step >= 1, "rollout.prompts_per_step: must be >= 1, got ", c.rollout.prompts_per_step);
  AR_CHECK(c.rollout.samples_per_prompt >= 1, "rollout.samples_per_prompt: must be >= 1");
  AR_CHECK(c.rollout.max_new_tokens >= 1, "rollout.max_new_tokens: must be >= 1");
  AR_CHECK(c.rollout.temperature > 0, "rollout.temperature: must be > 0 for RL sampling, got ", c.rollout.temperature);
  AR_CHECK(c.rollout.top_p > 0 && c.rollout.top_p <= 1, "rollout.top_p: must be in (0, 1], got ", c.rollout.top_p);
  AR_CHECK(c.rollout.top_k >= 0, "rollout.top_k: must be >= 0");
  if (use == ConfigUse::rl)
    AR_CHECK(!c.reward.components.empty(), "reward.components: at least one component is required");
  check_one_of("algo.advantage", c.algo.advantage, {"grpo", "rloo", "reinforce_pp", "reinforce"});
  if (c.algo.advantage == "grpo" || c.algo.advantage == "rloo")
    AR_CHECK(c.rollout.samples_per_prompt >= 2, "rollout.samples_per_prompt: ", c.algo.advantage,
             " needs at least 2 samples per prompt, got ", c.rollout.samples_per_prompt);
  check_one_of("algo.policy_loss", c.algo.policy_loss, {"ppo_clip"});
  check_one_of("algo.loss_agg", c.algo.loss_agg, {"token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm"});
  AR_CHECK(c.algo.clip_low > 0 && c.algo.clip_low < 1, "algo.clip_low: must be in (0, 1), got ", c.algo.clip_low);
  AR_CHECK(c.algo.clip_high > 0, "algo.clip_high: must be > 0, got ", c.algo.clip_high);
  AR_CHECK(c.algo.dual_clip == 0 || c.algo.dual_clip > 1, "algo.dual_clip: 0 (off) or > 1, got ", c.algo.dual_clip);
  AR_CHECK(c.algo.kl_coef >= 0, "algo.kl_coef: must be >= 0");
  check_one_of("algo.kl_estimator", c.algo.kl_estimator, {"k1", "k2", "k3"});
  check_one_of("algo.kl_in", c.algo.kl_in, {"loss", "reward"});
  AR_CHECK(c.algo.ppo_epochs >= 1, "algo.ppo_epochs: must be >= 1");
  AR_CHECK(c.algo.mini_batches >= 1, "algo.mini_batches: must be >= 1");
  AR_CHECK(c.algo.micro_batch_size >= 1, "algo.micro_batch_size: must be >= 1");
  AR_CHECK(c.algo.max_sampling_rounds >= 1, "algo.max_sampling_rounds: must be >= 1");
  const int64_t sequences = c.rollout.prompts_per_step * c.rollout.samples_per_prompt;
  AR_CHECK(sequences % c.algo.mini_batches == 0, "algo.mini_batches: ", c.algo.mini_batches,
           " must divide the sequences per step (rollout.prompts_per_step x rollout.samples_per_prompt = ",
           sequences, ")");
  credit::validate_credit_options(c.credit);
  AR_CHECK(c.optim.lr > 0, "optim.lr: must be > 0, got ", c.optim.lr);
  AR_CHECK(c.optim.beta1 >= 0 && c.optim.beta1 < 1 && c.optim.beta2 >= 0 && c.optim.beta2 < 1,
           "optim.beta1 / optim.beta2: must be in [0, 1)");
  AR_CHECK(c.optim.eps > 0, "optim.eps: must be > 0");
  AR_CHECK(c.optim.weight_decay >= 0, "optim.weight_decay: must be >= 0");
  AR_CHECK(c.optim.grad_clip >= 0, "optim.grad_clip: must be >= 0 (0 = off)");
  AR_CHECK(c.optim.warmup_steps >= 0, "optim.warmup_steps: must be >= 0");
  check_one_of("optim.schedule", c.optim.schedule, {"constant", "cosine"});
  AR_CHECK(c.optim.min_lr_ratio >= 0 && c.optim.min_lr_ratio <= 1, "optim.min_lr_ratio: must be in [0, 1]");
  AR_CHECK(c.train.steps >= 1, "train.steps: must be >= 1");
  AR_CHECK(c.train.eval_every >= 0, "train.eval_every: must be >= 0");
  AR_CHECK(c.train.eval_samples >= 1, "train.eval_samples: must be >= 1");
  AR_CHECK(c.train.eval_temperature >= 0, "train.eval_temperature: must be >= 0 (0 = greedy)");
  AR_CHECK(c.train.max_consecutive_skips >= 1, "train.max_consecutive_skips: must be >= 1, got ",
           c.train.max_consecutive_skips);
  AR_CHECK(c.checkpoint.every >= 0, "checkpoint.every: must be >= 0");
  AR_CHECK(c.checkpoint.keep_last >= 1, "checkpoint.keep_last: must be >= 1");
  AR_CHECK(!c.logging.run_dir.empty(), "logging.run_dir: required");
  AR_CHECK(c.distributed.timeout_seconds > 0, "distributed.timeout_seconds: must be positive, got ",
           c.distributed.timeout_seconds);
  check_one_of("rollout.control", c.rollout.control, {"none", "good", "bad"});
  check_one_of("sft.mode", c.sft.mode, {"plain", "conditional", "context_indicator"});
  AR_CHECK(c.sft.batch_size >= 1, "sft.batch_size: must be >= 1");
  AR_CHECK(!c.sft.response_key.empty(), "sft.response_key: required");
  AR_CHECK(!c.sft.text_key.empty(), "sft.text_key: required");
  const ConditionalSection& cond = c.sft.conditional;
  AR_CHECK(!cond.scorer.empty(), "sft.conditional.scorer: required (a reward component name, or field)");
  if (cond.scorer != "field")
    AR_CHECK(rewards::reward_components().contains(cond.scorer), "sft.conditional.scorer: '", cond.scorer,
             "' is not a reward component (expected field or one of: ", rewards::reward_components().joined_names(),
             ")");
  AR_CHECK(cond.scorer != "field" || !cond.score_key.empty(), "sft.conditional.score_key: required with scorer field");
  AR_CHECK(cond.threshold_percentile == -1 || (cond.threshold_percentile >= 0 && cond.threshold_percentile <= 100),
           "sft.conditional.threshold_percentile: must be in [0, 100], or -1 to use sft.conditional.threshold, got ",
           cond.threshold_percentile);
  AR_CHECK(cond.unconditioned_fraction >= 0 && cond.unconditioned_fraction <= 1,
           "sft.conditional.unconditioned_fraction: must be in [0, 1], got ", cond.unconditioned_fraction);
  AR_CHECK(cond.min_sentence_chars >= 0, "sft.conditional.min_sentence_chars: must be >= 0");
  AR_CHECK(cond.embedding_noise_std >= 0, "sft.conditional.embedding_noise_std: must be >= 0");
  const ContextIndicatorSection& ind = c.sft.context_indicator;
  AR_CHECK(ind.layer >= -1, "sft.context_indicator.layer: must be a layer index, or -1 for the middle layer, got ",
           ind.layer);
  AR_CHECK(ind.beta >= 0 && ind.beta <= 1, "sft.context_indicator.beta: must be in [0, 1] (an attention mass), got ",
           ind.beta);
  AR_CHECK(ind.embedding_noise_std >= 0, "sft.context_indicator.embedding_noise_std: must be >= 0");
}

}  // namespace anchor
