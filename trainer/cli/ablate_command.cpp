// `anchor-rl ablate SPEC.yaml`: an ablation study as one command (docs/ablations.md). The spec
// names a base config, the arms (overrides, one control), seeds, an optional shared warm start
// and the ledger of per-run result files; the command runs what is missing, resumes what was
// interrupted, and writes the report (mean curves, area, steps to a threshold, paired
// differences with bootstrap intervals; JSON, Markdown and a PNG).
#include <CLI/CLI.hpp>

#include <unistd.h>

#include <climits>
#include <memory>

#include "trainer/ablation/ablation_runner.h"
#include "trainer/cli/commands.h"
#include "trainer/common/error.h"

namespace anchor::cli {
namespace {

std::string this_executable() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  AR_CHECK(n > 0, "ablate: cannot find the anchor-rl executable (/proc/self/exe)");
  return std::string(buf, static_cast<size_t>(n));
}

}  // namespace

Action register_ablate(CLI::App& app) {
  auto* cmd = app.add_subcommand("ablate", "Run an ablation study: every arm x seed of a spec, resumable, with a report");
  auto o = std::make_shared<AblateOptions>();
  cmd->add_option("spec", o->spec_path, "Ablation spec (YAML; see docs/ablations.md)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--parallel", o->parallel, "Runs at once (their threads split the cores)")->check(CLI::PositiveNumber);
  cmd->add_option("--threads", o->threads, "CPU threads shared by the runs at once (0 = every core)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--report", o->report_only, "Only write the report from the ledger's result files");
  cmd->add_flag("--dry-run", o->dry_run, "Print what would run (new or resumed, and the command); run nothing");
  cmd->add_flag("--ignore-memory-plan", o->ignore_memory_plan,
                "Start --parallel N runs even if N times the memory plan's peak does not fit");
  cmd->add_option("--python", o->python, "Python with matplotlib for curves.png (default: $ANCHOR_PYTHON, the set-up venv)");
  return [cmd, o]() -> int {
    if (!cmd->parsed()) return -1;
    o->executable = this_executable();
    return run_ablation(*o);
  };
}

}  // namespace anchor::cli
