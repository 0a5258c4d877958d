#include "trainer/ablation/ablation_spec.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <set>

#include "trainer/common/error.h"
#include "trainer/common/file_util.h"

namespace anchor {
namespace {

struct Reader {
  const std::string& source;

  std::string where(const std::string& key) const { return str_cat(source, ": ", key); }

  void only_keys(const YAML::Node& node, const std::string& key, const std::set<std::string>& allowed) const {
    AR_CHECK(node.IsMap(), where(key.empty() ? "the spec" : key), ": expected a mapping");
    for (const auto& kv : node) {
      AR_CHECK(kv.first.IsScalar(), where(key.empty() ? "the spec" : key), ": keys must be names, got '",
               YAML::Dump(kv.first), "'");
      const std::string k = kv.first.as<std::string>();
      if (allowed.count(k)) continue;
      std::string names;
      for (const auto& a : allowed) names += (names.empty() ? "" : ", ") + a;
      AR_FAIL(where(key.empty() ? k : key + "." + k), ": unknown key (expected one of ", names, ")");
    }
  }

  std::string text(const YAML::Node& node, const std::string& key) const {
    AR_CHECK(node.IsScalar(), where(key), ": expected a string");
    return node.as<std::string>();
  }

  template <class T> T number(const YAML::Node& node, const std::string& key, T low) const {
    T value{};
    try {
      AR_CHECK(node.IsScalar(), "");
      value = node.as<T>();
    } catch (...) {
      AR_FAIL(where(key), ": expected a number, got '", YAML::Dump(node), "'");
    }
    AR_CHECK(value >= low, where(key), ": must be >= ", low, ", got ", value);
    return value;
  }

  std::vector<std::string> overrides(const YAML::Node& node, const std::string& key) const {
    AR_CHECK(node.IsSequence(), where(key), ": expected a list of 'section.key=value' overrides");
    std::vector<std::string> out;
    for (size_t i = 0; i < node.size(); ++i) {
      const std::string item = str_cat(key, "[", i, "]");
      const std::string o = text(node[i], item);
      const size_t eq = o.find('='), dot = o.find('.');
      AR_CHECK(eq != std::string::npos && dot != std::string::npos && dot < eq, where(item),
               ": expected 'section.key=value', got '", o, "'");
      const std::string path = o.substr(0, eq);
      // The command owns these: each run's seed, steps, schedule and directory come from the spec.
      for (const char* owned : {"train.seed", "train.steps", "train.eval_every", "logging.run_dir", "model.threads"})
        AR_CHECK(path != owned, where(item), ": ", owned,
                 " is set by the spec (seeds, steps, eval_every, runs) or by --threads, not by an override");
      out.push_back(o);
    }
    return out;
  }
};

bool valid_name(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  }) && s != "." && s != "..";
}

}  // namespace

const AblationArm& AblationSpec::control() const {
  for (const auto& a : arms)
    if (a.control) return a;
  AR_FAIL(source, ": no arm is marked control: true");
}

namespace {

AblationSpec parse_spec(const std::string& yaml_text, const std::string& source);

}  // namespace

// yaml-cpp reports a value it cannot convert with an exception of its own: name the spec, line
// and column instead.
AblationSpec parse_ablation_spec(const std::string& yaml_text, const std::string& source) {
  try {
    return parse_spec(yaml_text, source);
  } catch (const YAML::Exception& e) {
    AR_FAIL(source, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg);
  }
}

namespace {

AblationSpec parse_spec(const std::string& yaml_text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    AR_FAIL(source, ":", e.mark.line + 1, ":", e.mark.column + 1, ": not valid YAML: ", e.msg);
  }
  const Reader r{source};
  r.only_keys(root, "", {"name", "base", "set", "warm_start", "arms", "seeds", "steps", "eval_every", "threshold",
                         "ledger", "runs", "bootstrap", "start_eval"});
  AblationSpec s;
  s.source = source;
  for (const char* key : {"name", "base", "arms", "seeds", "ledger", "runs"})
    AR_CHECK(root[key], r.where(key), ": missing (required)");
  s.name = r.text(root["name"], "name");
  AR_CHECK(valid_name(s.name), r.where("name"), ": use letters, digits, '_', '-' and '.', got '", s.name, "'");
  s.base = r.text(root["base"], "base");
  if (root["set"]) s.overrides = r.overrides(root["set"], "set");
  s.ledger = r.text(root["ledger"], "ledger");
  s.runs = r.text(root["runs"], "runs");
  AR_CHECK(!s.ledger.empty() && !s.runs.empty(), r.where("ledger"), " and runs: expected directories");
  if (root["steps"]) s.steps = r.number<int64_t>(root["steps"], "steps", 1);
  if (root["eval_every"]) s.eval_every = r.number<int64_t>(root["eval_every"], "eval_every", 1);
  if (root["threshold"]) {
    s.threshold = r.number<double>(root["threshold"], "threshold", 0.0);
    AR_CHECK(s.threshold <= 1, r.where("threshold"), ": a held-out accuracy in [0, 1], got ", s.threshold);
  }
  if (root["start_eval"]) {
    const std::string v = r.text(root["start_eval"], "start_eval");
    AR_CHECK(v == "each" || v == "shared", r.where("start_eval"), ": expected each or shared, got '", v, "'");
    s.shared_start_eval = v == "shared";
  }
  if (const YAML::Node b = root["bootstrap"]) {
    r.only_keys(b, "bootstrap", {"resamples", "seed"});
    if (b["resamples"]) s.bootstrap_resamples = r.number<int64_t>(b["resamples"], "bootstrap.resamples", 100);
    AR_CHECK(s.bootstrap_resamples <= 10'000'000, r.where("bootstrap.resamples"), ": at most 10 000 000, got ",
             s.bootstrap_resamples);
    if (b["seed"]) s.bootstrap_seed = r.number<uint64_t>(b["seed"], "bootstrap.seed", 0);
  }
  if (const YAML::Node w = root["warm_start"]) {
    r.only_keys(w, "warm_start", {"path", "steps", "seed"});
    AR_CHECK(static_cast<bool>(w["path"]) != static_cast<bool>(w["steps"]), r.where("warm_start"),
             ": expected either path (weights every arm starts from) or steps (train the base config first)");
    if (w["path"]) s.warm_start.path = r.text(w["path"], "warm_start.path");
    if (w["steps"]) s.warm_start.steps = r.number<int64_t>(w["steps"], "warm_start.steps", 1);
    if (w["seed"]) s.warm_start.seed = r.number<uint64_t>(w["seed"], "warm_start.seed", 0);
  }

  const YAML::Node seeds = root["seeds"];
  AR_CHECK(seeds.IsSequence() && seeds.size() > 0, r.where("seeds"), ": expected a non-empty list of seeds");
  std::set<uint64_t> seen_seeds;
  for (size_t i = 0; i < seeds.size(); ++i) {
    const uint64_t seed = r.number<uint64_t>(seeds[i], str_cat("seeds[", i, "]"), 0);
    AR_CHECK(seen_seeds.insert(seed).second, r.where(str_cat("seeds[", i, "]")), ": seed ", seed, " is listed twice");
    s.seeds.push_back(seed);
  }

  const YAML::Node arms = root["arms"];
  AR_CHECK(arms.IsSequence() && arms.size() >= 2, r.where("arms"), ": expected a list of at least two arms");
  std::set<std::string> names;
  for (size_t i = 0; i < arms.size(); ++i) {
    const std::string key = str_cat("arms[", i, "]");
    r.only_keys(arms[i], key, {"name", "set", "control"});
    AR_CHECK(arms[i]["name"], r.where(key + ".name"), ": missing (required)");
    AblationArm arm;
    arm.name = r.text(arms[i]["name"], key + ".name");
    AR_CHECK(valid_name(arm.name), r.where(key + ".name"), ": use letters, digits, '_', '-' and '.', got '", arm.name,
             "'");
    AR_CHECK(names.insert(arm.name).second, r.where(key + ".name"), ": arm '", arm.name, "' is listed twice");
    if (arms[i]["set"]) arm.overrides = r.overrides(arms[i]["set"], key + ".set");
    if (const YAML::Node c = arms[i]["control"]) {
      try {
        arm.control = c.as<bool>();
      } catch (...) {
        AR_FAIL(r.where(key + ".control"), ": expected true or false");
      }
    }
    s.arms.push_back(arm);
  }
  const auto controls = std::count_if(s.arms.begin(), s.arms.end(), [](const AblationArm& a) { return a.control; });
  AR_CHECK(controls == 1, r.where("arms"), ": exactly one arm must be marked control: true, found ", controls);
  return s;
}

}  // namespace

AblationSpec load_ablation_spec(const std::string& path) { return parse_ablation_spec(read_text_file(path), path); }

}  // namespace anchor
