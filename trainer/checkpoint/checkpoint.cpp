#include "trainer/checkpoint/checkpoint.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <thread>

#include "trainer/checkpoint/checkpoint_manifest.h"
#include "trainer/common/error.h"
#include "trainer/common/file_util.h"
#include "trainer/common/log.h"

namespace anchor {

namespace fs = std::filesystem;

std::string checkpoint_name(int64_t step) {
  char name[32];
  std::snprintf(name, sizeof(name), "step-%08lld", static_cast<long long>(step));
  return name;
}

namespace {

std::vector<fs::path> complete_checkpoints(const fs::path& dir) {
  std::vector<fs::path> out;
  if (!fs::is_directory(dir)) return out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && name.rfind("step-", 0) == 0 && fs::exists(entry.path() / "DONE"))
      out.push_back(entry.path());
  }
  std::sort(out.begin(), out.end());  // zero-padded names sort by step
  return out;
}

int64_t step_of(const std::string& name) {
  return name.rfind("step-", 0) == 0 ? std::atoll(name.c_str() + 5) : -1;
}

// Test-only hook (crash soak, tests/python/check_crash_soak.py): ANCHOR_TEST_CHECKPOINT_FAULT=
// "<point>@<step>:kill" SIGKILLs this process at a named point of save_checkpoint, ":pause"
// prints a line and waits there to be killed from outside. Points, in order: model, optimizer,
// manifest, done, rename, latest, prune.
void checkpoint_test_point(const char* point, int64_t step) {
  const char* spec = std::getenv("ANCHOR_TEST_CHECKPOINT_FAULT");
  if (spec == nullptr) return;
  const std::string s(spec);
  const std::string prefix = str_cat(point, "@", step, ":");
  if (s.rfind(prefix, 0) != 0) return;
  const std::string action = s.substr(prefix.size());
  std::cerr << "anchor-rl: test hook: checkpoint of step " << step << " at point '" << point << "': " << action
            << std::endl;
  if (action == "kill") std::raise(SIGKILL);
  if (action == "pause")
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
}

// Leftovers of a process killed while writing (.tmp-*) or pruning (.trash-*): no complete
// checkpoint is among them.
void remove_leftovers(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(".tmp-", 0) == 0 || name.rfind(".trash-", 0) == 0) fs::remove_all(entry.path(), ec);
  }
}

void write_checkpoint_files(const fs::path& tmp, const TrainerState& state, const Pretrained& policy,
                            const NamedTensors& state_tensors) {
  save_pretrained(policy, tmp.string());
  checkpoint_test_point("model", state.step);
  write_safetensors((tmp / "trainer_state.safetensors").string(), state_tensors, {{"format", "anchor-rl"}});
  checkpoint_test_point("optimizer", state.step);
  const nlohmann::json j = {{"schema_version", kCheckpointSchemaVersion},
                            {"step", state.step},
                            {"data", {{"epoch", state.data_epoch}, {"position", state.data_position}}},
                            {"config_hash", state.config_hash},
                            {"world_size", state.world_size},
                            {"extra", state.extra}};
  write_text_file_atomic((tmp / "trainer_state.json").string(), j.dump(2) + "\n");
  checkpoint_test_point("manifest", state.step);
  write_manifest(tmp.string());
  checkpoint_test_point("done", state.step);
  write_text_file_atomic((tmp / "DONE").string(), "complete\n");
}

std::string describe(const CheckpointCheck& check) {
  std::string out;
  for (const auto& p : check.problems) out += (out.empty() ? "" : "; ") + p;
  return out;
}

}  // namespace

std::string save_checkpoint(const std::string& run_dir, const TrainerState& state, const Pretrained& policy,
                            const NamedTensors& state_tensors, int64_t keep_last) {
  const fs::path dir = fs::path(run_dir) / "checkpoints";
  const std::string name = checkpoint_name(state.step);
  const fs::path tmp = dir / (".tmp-" + name + "-" + std::to_string(::getpid()));
  const fs::path final_path = dir / name;
  // Until the rename below nothing outside `tmp` changes: a failed write (disk full, read-only
  // directory, file size limit) removes `tmp` and leaves the earlier checkpoints and `latest`
  // as they were.
  try {
    fs::create_directories(dir);
    remove_leftovers(dir);
    fs::create_directories(tmp);
    write_checkpoint_files(tmp, state, policy, state_tensors);
  } catch (const std::exception& e) {
    std::error_code ignored;
    fs::remove_all(tmp, ignored);
    AR_FAIL("checkpoint of step ", state.step, " not written: ", e.what(),
            "; the earlier checkpoints and 'latest' in ", dir.string(), " are unchanged");
  }
  checkpoint_test_point("rename", state.step);
  // A re-run of the same step (after a resume from an older checkpoint) replaces it; moved
  // aside first so that a kill in between never leaves a half-deleted step-* directory.
  const fs::path trash = dir / (".trash-" + name + "-" + std::to_string(::getpid()));
  if (fs::exists(final_path)) fs::rename(final_path, trash);
  std::error_code ec;
  fs::rename(tmp, final_path, ec);
  AR_CHECK(!ec, "cannot rename ", tmp.string(), " to ", final_path.string(), ": ", ec.message());
  fs::remove_all(trash, ec);
  checkpoint_test_point("latest", state.step);
  write_text_file_atomic((dir / "latest").string(), name + "\n");
  checkpoint_test_point("prune", state.step);
  auto complete = complete_checkpoints(dir);
  for (size_t i = 0; i + static_cast<size_t>(keep_last) < complete.size(); ++i) {
    const fs::path old_trash = dir / (".trash-" + complete[i].filename().string());
    fs::rename(complete[i], old_trash);
    fs::remove_all(old_trash);
  }
  return final_path.string();
}

std::string resolve_checkpoint(const std::string& run_dir, const std::string& spec) {
  if (spec != "latest") {
    // A checkpoint named explicitly is used only if intact: no fallback behind the user's back.
    const CheckpointCheck check = verify_checkpoint_directory(spec);
    AR_CHECK(check.intact(), "--resume: ", spec, " is damaged: ", describe(check),
             " (anchor-rl checkpoint verify lists every checkpoint of the run)");
    if (!check.has_manifest) log::warn(str_cat("--resume: ", spec, " has no manifest (older anchor-rl): not verified"));
    return spec;
  }
  const fs::path dir = fs::path(run_dir) / "checkpoints";
  const fs::path latest = dir / "latest";
  const auto complete = complete_checkpoints(dir);
  AR_CHECK(fs::exists(latest) || !complete.empty(), "--resume latest: ", latest.string(),
           " does not exist (no checkpoint in ", run_dir, ")");
  // Candidates: the one `latest` names, then every complete checkpoint, newest first.
  std::vector<fs::path> candidates;
  std::string latest_name;
  if (fs::exists(latest)) {
    try {
      latest_name = read_text_file(latest.string());
      latest_name.erase(latest_name.find_last_not_of(" \n\r\t") + 1);
    } catch (const std::exception& e) {
      log::warn(str_cat("--resume latest: cannot read ", latest.string(), ": ", e.what()));
    }
    if (step_of(latest_name) >= 0 && latest_name.find('/') == std::string::npos) {
      candidates.push_back(dir / latest_name);
    } else {
      log::warn(str_cat("--resume latest: ", latest.string(), " holds '", latest_name, "', not a checkpoint name"));
      latest_name.clear();
    }
  }
  for (auto it = complete.rbegin(); it != complete.rend(); ++it)
    if (candidates.empty() || *it != candidates.front()) candidates.push_back(*it);
  std::string damaged;
  for (const auto& candidate : candidates) {
    const CheckpointCheck check = verify_checkpoint_directory(candidate.string());
    if (!check.intact()) {
      log::warn(str_cat("--resume latest: ", candidate.string(), " is damaged: ", describe(check)));
      damaged += str_cat("\n  ", candidate.filename().string(), ": ", describe(check));
      continue;
    }
    if (!check.has_manifest)
      log::warn(str_cat("--resume latest: ", candidate.string(), " has no manifest (older anchor-rl): not verified"));
    const std::string name = candidate.filename().string();
    if (!damaged.empty() || name != latest_name) {
      int64_t newest = step_of(latest_name);
      if (!complete.empty()) newest = std::max(newest, step_of(complete.back().filename().string()));
      log::warn(str_cat("--resume latest: falling back to ", name, ", the newest intact checkpoint; ",
                        std::max<int64_t>(0, newest - step_of(name)), " step(s) since it are lost and will be redone"));
    }
    return candidate.string();
  }
  AR_FAIL("--resume latest: no intact checkpoint in ", dir.string(), damaged.empty() ? "" : ":", damaged,
          "\nstart a new run, or resume an explicitly named checkpoint after repairing it");
}

TrainerState load_trainer_state(const std::string& checkpoint_dir) {
  const std::string path = (fs::path(checkpoint_dir) / "trainer_state.json").string();
  const nlohmann::json j = read_json_file(path);
  // Resume rules: schema_version 1 or 2 (2 adds the manifest, the keys are the same); step /
  // data are restored as saved; any world size (the state is global); a config_hash mismatch
  // is allowed (ablations branch with a new config) and logged.
  const int schema = j.is_object() && j.contains("schema_version") && j["schema_version"].is_number_integer()
                         ? j["schema_version"].get<int>()
                         : -1;
  AR_CHECK(schema == 1 || schema == kCheckpointSchemaVersion, path, ": schema_version ", schema,
           " is not one this build reads (1 or ", kCheckpointSchemaVersion, ")");
  TrainerState s;
  try {
    s.step = j.at("step").get<int64_t>();
    s.data_epoch = j.at("data").at("epoch").get<int64_t>();
    s.data_position = j.at("data").at("position").get<int64_t>();
    s.config_hash = j.at("config_hash").get<std::string>();
    s.world_size = j.at("world_size").get<int64_t>();
    s.extra = j.value("extra", nlohmann::json::object());
  } catch (const nlohmann::json::exception& e) {
    AR_FAIL(path, ": malformed trainer state (", e.what(), ")");
  }
  return s;
}

}  // namespace anchor
