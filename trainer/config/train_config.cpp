#include "trainer/config/train_config.h"

#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <filesystem>
#include <functional>
#include <array>
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
  void operator()(const char* key, T& field, const char* /*help*/ = nullptr) {
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
  template <NamedEnum E>
  void read(const YAML::Node& v, const std::string& key, E& f) {
    std::string name;
    scalar(v, key, name, str_cat("one of ", enum_names_joined<E>()).c_str());
    AR_CHECK(enum_from_name(name, f), source_, ": ", key, " must be one of ", enum_names_joined<E>(), ", got '", name,
             "'", where(key, v));
  }
  void read(const YAML::Node& v, const std::string& key, credit::LayerSelection& f) {
    if (v.IsScalar()) {
      f.layers.clear();
      AR_CHECK(v.Scalar() != "list" && enum_from_name(v.Scalar(), f.mode), source_, ": ", key,
               " must be default, all, auto or a list of layer indices, got '", v.Scalar(), "'", where(key, v));
      return;
    }
    AR_CHECK(v.IsSequence() && v.size() > 0, source_, ": ", key,
             " must be default, all, auto or a non-empty list of layer indices", where(key, v));
    f.mode = credit::LayerMode::list;
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
  void operator()(const char* key, const T& field, const char* /*help*/ = nullptr) {
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
  template <NamedEnum E>
  void write(E v) {
    out_ << enum_name(v);
  }
  void write(const credit::LayerSelection& v) {
    if (v.mode != credit::LayerMode::list) {
      out_ << enum_name(v.mode);
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

// The config reference: every key with its type, default, allowed values and help line, in
// visit() order, one table per section.
class Describer {
 public:
  struct Table {
    std::string section;
    std::vector<std::array<std::string, 4>> rows;  // key, type / allowed values, default, help
  };
  std::vector<Table> tables;

  template <class Section>
  void section(const char* key, Section& section) {
    const std::string outer = path_;
    const size_t outer_table = current_;
    path_ = path_.empty() ? key : path_ + "." + key;
    tables.push_back({path_, {}});
    current_ = tables.size() - 1;
    section.visit(*this);
    path_ = outer;
    current_ = outer_table;
  }
  template <class T>
  void operator()(const char* key, const T& field, const char* help = nullptr) {
    tables[current_].rows.push_back({key, type_of(field), default_of(field), help ? help : ""});
  }

 private:
  static std::string code(const std::string& s) { return "`" + s + "`"; }
  static std::string type_of(bool) { return "bool"; }
  static std::string type_of(int64_t) { return "integer"; }
  static std::string type_of(uint64_t) { return "integer >= 0"; }
  static std::string type_of(double) { return "number"; }
  static std::string type_of(const std::string&) { return "string"; }
  static std::string type_of(const std::vector<std::string>&) { return "list of strings"; }
  static std::string type_of(const credit::LayerSelection&) { return "`default` \\| `all` \\| `auto` \\| list of layers"; }
  static std::string type_of(const std::vector<RewardComponentConfig>&) { return "list of {name, weight, ...}"; }
  template <NamedEnum E>
  static std::string type_of(E) {
    return "`" + enum_names_joined<E>("` \\| `") + "`";
  }
  static std::string default_of(bool v) { return code(v ? "true" : "false"); }
  static std::string default_of(int64_t v) { return code(std::to_string(v)); }
  static std::string default_of(uint64_t v) { return code(std::to_string(v)); }
  static std::string default_of(double v) { return code(nlohmann::json(v).dump()); }
  static std::string default_of(const std::string& v) { return v.empty() ? "(empty)" : code(v); }
  static std::string default_of(const std::vector<std::string>& v) { return code(nlohmann::json(v).dump()); }
  static std::string default_of(const credit::LayerSelection& v) {
    return code(v.mode == credit::LayerMode::list ? nlohmann::json(v.layers).dump() : enum_name(v.mode));
  }
  static std::string default_of(const std::vector<RewardComponentConfig>& v) { return v.empty() ? "(none)" : "…"; }
  template <NamedEnum E>
  static std::string default_of(E v) {
    return code(enum_name(v));
  }
  std::string path_;
  size_t current_ = 0;
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
  // "~/" at the start of model.path is the home directory (scripts/setup/get_model.sh caches models
  // under ~/.cache/anchor-rl/models); the resolved config records the expanded path.
  const char* home = std::getenv("HOME");
  if (config.model.path.rfind("~/", 0) == 0 && home) config.model.path = std::string(home) + config.model.path.substr(1);
  try {
    validate_train_config(config, use);
  } catch (const Error& e) {
    // Range checks run on the filled struct; name the file and the line the key came from.
    static const std::regex located(R"(^(([a-z_]+(?:\.[a-z_]+)+)\S*[: ].*)$)");
    std::smatch m;
    const std::string what = e.what();
    if (!std::regex_match(what, m, located)) throw;
    const auto it = origins.find(m[2].str());
    throw Error(str_cat(source, ": ", m[1].str(), it != origins.end() ? it->second : " (default value)"),
                e.location());  // where the check that failed is
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

std::string train_config_reference() {
  TrainConfig defaults;
  Describer d;
  defaults.visit(d);
  std::string out =
      "# Config reference\n\n"
      "Every key of a run config (`anchor-rl train` / `anchor-rl sft`), section by section, with its\n"
      "type or allowed values, its default and what it does. Generated from the config structs\n"
      "(`trainer/config/train_config.h`, `credit/credit_options.h`) by `anchor-rl config --reference`;\n"
      "a test fails when this page is out of date. How configs are written (`base:` files, `--set`\n"
      "overrides, errors): [running.md](running.md). The formulas behind the credit keys:\n"
      "[design.md](design.md#5-credit-maps-credit).\n";
  for (const Describer::Table& t : d.tables) {
    if (t.rows.empty()) continue;
    out += "\n## " + t.section + "\n\n| key | type | default | what |\n|---|---|---|---|\n";
    for (const auto& [key, type, value, help] : t.rows)
      out += "| `" + t.section + "." + key + "` | " + type + " | " + value + " | " + help + " |\n";
  }
  return out;
}

namespace {

// "section.key: value" for every leaf of a resolved config's YAML (a list is one leaf).
void flatten_yaml(const YAML::Node& node, const std::string& prefix, std::map<std::string, std::string>& out) {
  if (node.IsMap()) {
    for (const auto& kv : node) flatten_yaml(kv.second, prefix + kv.first.as<std::string>() + ".", out);
    return;
  }
  YAML::Emitter e;
  e << YAML::Flow << node;
  out[prefix.substr(0, prefix.size() - 1)] = e.c_str();
}

}  // namespace

// The hash covers the values that differ from the defaults, not every key: a key a later
// version adds (at its default) leaves it unchanged, so ledgers and checkpoints stay readable
// across upgrades. A changed default is a change of code, which the commit records.
std::string train_config_hash(const TrainConfig& config) {
  TrainConfig copy = config;
  copy.logging = LoggingSection{};  // where a run writes does not change what it computes
  copy.distributed = DistributedSection{};  // nor how long a collective may wait
  std::map<std::string, std::string> mine, defaults;
  flatten_yaml(YAML::Load(train_config_to_yaml(copy)), "", mine);
  flatten_yaml(YAML::Load(train_config_to_yaml(TrainConfig{})), "", defaults);
  uint64_t h = 1469598103934665603ull;  // FNV-1a 64
  for (const auto& [key, value] : mine) {
    if (const auto it = defaults.find(key); it != defaults.end() && it->second == value) continue;
    for (unsigned char c : key + ": " + value + "\n") h = (h ^ c) * 1099511628211ull;
  }
  char out[17];
  std::snprintf(out, sizeof(out), "%016llx", static_cast<unsigned long long>(h));
  return out;
}

LoraSettings LoraSection::settings() const {
  LoraSettings s;
  s.rank = rank;
  s.alpha = alpha;
  s.dropout = dropout;
  s.targets = parse_lora_targets(target_modules, "model.lora.target_modules");
  s.init = init;
  return s;
}

}  // namespace anchor
