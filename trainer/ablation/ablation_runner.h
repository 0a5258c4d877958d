// `anchor-rl ablate SPEC.yaml` (docs/ablations.md): runs every (arm, seed) of a spec as an
// `anchor-rl train` child process, one after another or several at once, and keeps the
// study's state on disk so that it survives anything:
//   - a run whose result file LEDGER/runs/ARM/seed-S.json exists is done (the ledger is meant to
//     be committed, so a study accumulates across machines and sittings);
//   - a run directory with a checkpoint is resumed (--resume latest); one without is moved aside
//     and started again, so nothing written is lost;
//   - every child holds a lock on its run for as long as it lives and gets SIGTERM when the
//     command dies (it then checkpoints and exits), so a restarted command never runs a run twice;
//   - SIGINT / SIGTERM stop the children at their next step boundary (checkpointed); run the
//     same command again to continue.
// When every run is done (or with --report), the report: LEDGER/report.json, report.md and
// curves.png (scripts/plots/plot_ablation.py, when Python with matplotlib is found). Torch-free.
#pragma once

#include <string>

namespace anchor {

struct AblateOptions {
  std::string spec_path;
  std::string executable;  // the anchor-rl binary the runs use
  int parallel = 1;        // runs at once
  int threads = 0;         // CPU threads shared by the runs at once (0: every core)
  bool report_only = false;
  bool dry_run = false;    // print the plan, run nothing
  bool ignore_memory_plan = false;  // start --parallel N runs even if N planned peaks do not fit
  std::string python;      // interpreter for the plot ("" = $ANCHOR_PYTHON, then the set-up venv, then python3)
};

// Returns the process exit code: 0 when every run is done and the report written.
int run_ablation(const AblateOptions& options);

}  // namespace anchor
