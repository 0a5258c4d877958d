// `anchor-rl checkpoint verify PATH`: checks checkpoints against their manifests (sizes and
// XXH3-64 of every file, DONE present) — one checkpoint directory, or every checkpoint of a run
// directory together with what `latest` names. Exit 0 when everything checked is intact, 1
// otherwise, so a job script can test a run before resuming or copying it.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "trainer/checkpoint/checkpoint_manifest.h"
#include "trainer/cli/commands.h"
#include "trainer/common/error.h"
#include "trainer/common/file_util.h"

namespace anchor::cli {
namespace {

namespace fs = std::filesystem;

std::string megabytes(int64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MB", static_cast<double>(bytes) / 1e6);
  return text;
}

// Prints one line for the checkpoint; returns whether it is intact.
bool report(const fs::path& dir, const std::string& label) {
  const CheckpointCheck check = verify_checkpoint_directory(dir.string());
  if (!check.intact()) {
    std::cout << label << ": DAMAGED\n";
    for (const auto& p : check.problems) std::cout << "    " << p << "\n";
    return false;
  }
  if (check.has_manifest)
    std::cout << label << ": intact (" << check.files << " files, " << megabytes(check.bytes) << " verified)\n";
  else
    std::cout << label << ": complete, not verifiable (no manifest: written by an older anchor-rl)\n";
  return true;
}

int verify(const std::string& path) {
  const fs::path root(path);
  AR_CHECK(fs::is_directory(root), path, ": no such directory (expected a run directory or a checkpoint directory)");
  const bool is_checkpoint = fs::exists(root / "manifest.json") || fs::exists(root / "DONE") ||
                             fs::exists(root / "trainer_state.json");
  if (is_checkpoint) {
    if (report(root, path)) return 0;
    std::cerr << "anchor-rl: error: " << path << " is damaged\n";
    return 1;
  }
  const fs::path dir = fs::exists(root / "checkpoints") ? root / "checkpoints" : root;
  std::vector<fs::path> steps;
  std::vector<std::string> leftovers;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && name.rfind("step-", 0) == 0) steps.push_back(entry.path());
    if (name.rfind(".tmp-", 0) == 0 || name.rfind(".trash-", 0) == 0) leftovers.push_back(name);
  }
  AR_CHECK(!steps.empty(), path, ": no checkpoints (no step-* directory in ", dir.string(), ")");
  std::sort(steps.begin(), steps.end());
  int damaged = 0;
  std::vector<std::string> intact;
  for (const auto& step : steps) {
    if (report(step, step.filename().string())) intact.push_back(step.filename().string());
    else ++damaged;
  }
  // What resolve_checkpoint picks: the one `latest` names if intact, else the newest intact.
  std::string resume = intact.empty() ? "" : intact.back();
  for (const auto& name : leftovers)
    std::cout << name << ": left by an interrupted write or prune (removed by the next checkpoint)\n";
  const fs::path latest = dir / "latest";
  if (fs::exists(latest)) {
    std::string name = read_text_file(latest.string());
    name.erase(name.find_last_not_of(" \n\r\t") + 1);
    std::cout << "latest: " << name << (fs::is_directory(dir / name) ? "" : " (no such checkpoint)") << "\n";
    if (std::find(intact.begin(), intact.end(), name) != intact.end()) resume = name;
  } else {
    std::cout << "latest: missing\n";
  }
  std::cout << "--resume latest would use: " << (resume.empty() ? "nothing (no intact checkpoint)" : resume)
            << "\n";
  if (damaged == 0) return 0;
  std::cerr << "anchor-rl: error: " << damaged << " of " << steps.size() << " checkpoints in " << dir.string()
            << " are damaged\n";
  return 1;
}

}  // namespace

Action register_checkpoint(CLI::App& app) {
  auto* cmd = app.add_subcommand("checkpoint", "Inspect checkpoints");
  cmd->require_subcommand(1);
  auto* verify_cmd = cmd->add_subcommand(
      "verify", "Check checkpoints against their manifests (sizes, XXH3-64 checksums, DONE); exit 1 if any is damaged");
  auto path = std::make_shared<std::string>();
  verify_cmd->add_option("path", *path, "A run directory (checks every checkpoint) or one checkpoint directory")
      ->required();
  return [verify_cmd, path]() -> int { return verify_cmd->parsed() ? verify(*path) : -1; };
}

}  // namespace anchor::cli
