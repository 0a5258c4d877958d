// `anchor-rl config CONFIG [--set k=v]...`: the resolved config (every key, defaults included)
// after `base:` files and overrides, validated as `train` would; `--sft` validates as `sft`.
// `anchor-rl config --reference`: docs/config.md, every key with its type, default and help.
#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "trainer/cli/commands.h"
#include "trainer/common/error.h"
#include "trainer/config/train_config.h"

namespace anchor::cli {
namespace {

struct ConfigOptions {
  std::string path;
  std::vector<std::string> overrides;
  bool reference = false;
  bool sft = false;
};

int run_config(const ConfigOptions& o) {
  if (o.reference) {
    std::cout << train_config_reference();
    return 0;
  }
  AR_CHECK(!o.path.empty(), "config: give a CONFIG file, or --reference");
  std::cout << train_config_to_yaml(load_train_config(o.path, o.overrides, o.sft ? ConfigUse::sft : ConfigUse::rl));
  return 0;
}

}  // namespace

Action register_config(CLI::App& app) {
  auto o = std::make_shared<ConfigOptions>();
  CLI::App* sub = app.add_subcommand("config", "Print a resolved config, or the reference of every config key");
  sub->add_option("config", o->path, "YAML run config")->check(CLI::ExistingFile);
  sub->add_option("--set", o->overrides, "Override a config key: section.key=value (repeatable)");
  sub->add_flag("--sft", o->sft, "Validate as `anchor-rl sft` does (default: as `anchor-rl train`)");
  sub->add_flag("--reference", o->reference, "Print the config reference (docs/config.md) as Markdown");
  return [sub, o]() -> int { return sub->parsed() ? run_config(*o) : -1; };
}

}  // namespace anchor::cli
