// `anchor-rl sft CONFIG [--set k=v]... [--resume latest|DIR] [--init-from DIR] [--run-dir DIR]`
#include <CLI/CLI.hpp>

#include <memory>

#include "trainer/cli/commands.h"
#include "trainer/sft/sft_trainer.h"

namespace anchor::cli {

Action register_sft(CLI::App& app) {
  auto o = std::make_shared<TrainRunOptions>();
  CLI::App* sub = app.add_subcommand("sft", "Supervised fine-tuning from a YAML config (sft.mode: plain | conditional | context_indicator)");
  sub->add_option("config", o->config_path, "YAML run config (see configs/demo_sft.yaml)")->required()
      ->check(CLI::ExistingFile);
  sub->add_option("--set", o->overrides, "Override a config key: section.key=value (repeatable)");
  sub->add_option("--resume", o->resume, "Continue a run from a checkpoint: latest or a checkpoint directory");
  sub->add_option("--init-from", o->init_from, "Start from these weights")->check(CLI::ExistingDirectory);
  sub->add_option("--run-dir", o->run_dir, "Run directory (overrides logging.run_dir)");
  sub->add_option("--stop-after-step", o->stop_after_step, "Checkpoint and exit after this step")
      ->check(CLI::NonNegativeNumber);
  sub->add_flag("--ignore-memory-plan", o->ignore_memory_plan,
                "Start even if the memory plan (anchor-rl plan) says the run does not fit");
  return [sub, o]() -> int { return sub->parsed() ? run_sft_training(*o) : -1; };
}

}  // namespace anchor::cli
