// `anchor-rl sft-prepare CONFIG --out FILE.jsonl [--set k=v]...`: writes what `anchor-rl sft`
// would train on for the config's sft.mode — each row after the mode's transformation (control
// tokens, [IND]), the text as tokenized, the tokens in the loss, and the mode's per-sentence /
// per-turn scores — and prints the summary (good / bad counts, share flagged) as JSON.
#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>

#include "trainer/cli/commands.h"
#include "trainer/common/device.h"
#include "trainer/config/train_config.h"
#include "trainer/model/pretrained.h"
#include "trainer/sft/sft_data.h"

namespace anchor::cli {
namespace {

struct PrepareOptions {
  std::string config_path;
  std::vector<std::string> overrides;
  std::string out;
};

int run_sft_prepare(const PrepareOptions& o) {
  const TrainConfig cfg = load_train_config(o.config_path, o.overrides, ConfigUse::sft);
  const at::TensorOptions options = resolve_device(cfg.model.device, cfg.model.dtype, cfg.model.threads, "model");
  Pretrained policy = load_pretrained(cfg.model.path, options);
  const data::ChatTemplate chat = chat_template_for(policy, cfg.data.template_, "data.template");
  const sft::PreparedSft prepared = sft::prepare_sft_data(cfg, sft::load_sft_dataset(cfg), policy, chat);
  sft::write_prepared_sft(o.out, prepared, policy.tokenizer);
  std::cout << prepared.summary.dump(2) << "\n";
  return 0;
}

}  // namespace

Action register_sft_prepare(CLI::App& app) {
  auto o = std::make_shared<PrepareOptions>();
  CLI::App* sub = app.add_subcommand(
      "sft-prepare", "Write what `anchor-rl sft` would train on (sft.mode's transformed rows) as JSONL");
  sub->add_option("config", o->config_path, "YAML run config")->required()->check(CLI::ExistingFile);
  sub->add_option("--out", o->out, "Output JSONL file")->required();
  sub->add_option("--set", o->overrides, "Override a config key: section.key=value (repeatable)");
  return [sub, o]() -> int { return sub->parsed() ? run_sft_prepare(*o) : -1; };
}

}  // namespace anchor::cli
