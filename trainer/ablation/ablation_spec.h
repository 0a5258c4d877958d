// An ablation study as one file (docs/ablations.md): a base run config, arms that each change it
// by `--set` overrides (one arm is the control), the seeds every arm runs with, an optional shared
// warm start, and where the per-run result files (the ledger) and run directories go.
// `anchor-rl ablate SPEC.yaml` runs it; this file only reads and checks the spec. Torch-free.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace anchor {

struct AblationArm {
  std::string name;                    // [A-Za-z0-9_.-]+, unique; names the ledger and run directories
  std::vector<std::string> overrides;  // "section.key=value", applied after the spec's common ones
  bool control = false;
};

// Every arm may branch from the same weights: a model / checkpoint directory, or the base config
// (with the common overrides) trained for `steps` steps with seed `seed` first.
struct WarmStart {
  std::string path;
  int64_t steps = 0;
  uint64_t seed = 0;
  bool enabled() const { return !path.empty() || steps > 0; }
};

struct AblationSpec {
  std::string source;                  // the spec file (errors name it)
  std::string name;                    // the study's name
  std::string base;                    // base run config (path as given, relative to the working directory)
  std::vector<std::string> overrides;  // for every run, before the arm's
  WarmStart warm_start;
  std::vector<AblationArm> arms;
  std::vector<uint64_t> seeds;         // train.seed of each run
  int64_t steps = 0;                   // train.steps of every run (0: the base config's)
  int64_t eval_every = 0;              // train.eval_every (0: the base config's); step 0 is always evaluated
  double threshold = 0.5;              // held-out accuracy for "steps to reach"
  // "each": every run evaluates its starting weights; "shared": the first run to finish does, and
  // the others skip it and use its result (they start from the same weights, and the evaluation
  // is greedy and the same in every arm — checked).
  bool shared_start_eval = false;
  std::string ledger;                  // result files: LEDGER/runs/ARM/seed-S.json, report.{json,md}, curves.png
  std::string runs;                    // run directories: RUNS/ARM/seed-S
  int64_t bootstrap_resamples = 10000;
  uint64_t bootstrap_seed = 0;

  const AblationArm& control() const;
};

// Reads and checks a spec; every error names the file and the key (e.g. "arms[2].set").
AblationSpec parse_ablation_spec(const std::string& yaml_text, const std::string& source);
AblationSpec load_ablation_spec(const std::string& path);

}  // namespace anchor
