// `anchor-rl train CONFIG [--set k=v]... [--resume latest|DIR] [--init-from DIR] [--run-dir DIR]`
#include <CLI/CLI.hpp>

#include <memory>

#include "trainer/cli/commands.h"
#include "trainer/rl/rl_trainer.h"

namespace anchor::cli {

Action register_train(CLI::App& app) {
  auto o = std::make_shared<TrainRunOptions>();
  CLI::App* sub = app.add_subcommand("train", "RL fine-tuning (GRPO / PPO family) from a YAML config");
  sub->add_option("config", o->config_path, "YAML run config (see configs/)")->required()->check(CLI::ExistingFile);
  sub->add_option("--set", o->overrides, "Override a config key: section.key=value (repeatable)");
  sub->add_option("--resume", o->resume, "Continue a run from a checkpoint: latest or a checkpoint directory");
  sub->add_option("--init-from", o->init_from, "Start from these weights (fresh optimizer, step 0)")
      ->check(CLI::ExistingDirectory);
  sub->add_option("--run-dir", o->run_dir, "Run directory (overrides logging.run_dir)");
  sub->add_option("--stop-after-step", o->stop_after_step,
                  "Checkpoint and exit after this step, as if interrupted (to test resume)")
      ->check(CLI::NonNegativeNumber);
  sub->add_flag("--skip-start-eval", o->skip_start_eval,
                "No held-out evaluation of the starting weights at step 0 (anchor-rl ablate shares one)");
  sub->add_flag("--ignore-memory-plan", o->ignore_memory_plan,
                "Start even if the memory plan (anchor-rl plan) says the run does not fit");
  return [sub, o]() -> int { return sub->parsed() ? run_rl_training(*o) : -1; };
}

}  // namespace anchor::cli
