#include "trainer/checkpoint/checkpoint.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "trainer/common/error.h"
#include "trainer/common/file_util.h"

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

}  // namespace

static void write_checkpoint_files(const fs::path& tmp, const TrainerState& state, const Pretrained& policy,
                            const NamedTensors& state_tensors);

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
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    write_checkpoint_files(tmp, state, policy, state_tensors);
  } catch (const std::exception& e) {
    std::error_code ignored;
    fs::remove_all(tmp, ignored);
    AR_FAIL("checkpoint of step ", state.step, " not written: ", e.what(),
            "; the earlier checkpoints and 'latest' in ", dir.string(), " are unchanged");
  }
  fs::remove_all(final_path);  // a re-run of the same step replaces it
  std::error_code ec;
  fs::rename(tmp, final_path, ec);
  AR_CHECK(!ec, "cannot rename ", tmp.string(), " to ", final_path.string(), ": ", ec.message());
  write_text_file_atomic((dir / "latest").string(), name + "\n");
  auto complete = complete_checkpoints(dir);
  for (size_t i = 0; i + static_cast<size_t>(keep_last) < complete.size(); ++i) fs::remove_all(complete[i]);
  return final_path.string();
}

static void write_checkpoint_files(const fs::path& tmp, const TrainerState& state, const Pretrained& policy,
                            const NamedTensors& state_tensors) {
  save_pretrained(policy, tmp.string());
  write_safetensors((tmp / "trainer_state.safetensors").string(), state_tensors, {{"format", "anchor-rl"}});
  const nlohmann::json j = {{"schema_version", kCheckpointSchemaVersion},
                            {"step", state.step},
                            {"data", {{"epoch", state.data_epoch}, {"position", state.data_position}}},
                            {"config_hash", state.config_hash},
                            {"world_size", state.world_size},
                            {"extra", state.extra}};
  write_text_file_atomic((tmp / "trainer_state.json").string(), j.dump(2) + "\n");
  write_text_file_atomic((tmp / "DONE").string(), "complete\n");
}

std::string resolve_checkpoint(const std::string& run_dir, const std::string& spec) {
  fs::path path;
  if (spec == "latest") {
    const fs::path latest = fs::path(run_dir) / "checkpoints" / "latest";
    AR_CHECK(fs::exists(latest), "--resume latest: ", latest.string(), " does not exist (no checkpoint in ", run_dir, ")");
    std::string name = read_text_file(latest.string());
    name.erase(name.find_last_not_of(" \n\r\t") + 1);
    path = fs::path(run_dir) / "checkpoints" / name;
  } else {
    path = spec;
  }
  AR_CHECK(fs::is_directory(path), "--resume: ", path.string(), " is not a checkpoint directory");
  AR_CHECK(fs::exists(path / "DONE"), "--resume: ", path.string(), " is incomplete (no DONE marker): it was interrupted while being written");
  return path.string();
}

TrainerState load_trainer_state(const std::string& checkpoint_dir) {
  const std::string path = (fs::path(checkpoint_dir) / "trainer_state.json").string();
  const nlohmann::json j = read_json_file(path);
  // Resume rules: schema_version must match exactly; step / data are restored as saved;
  // world_size must equal the current one (checked by the caller); a config_hash mismatch
  // is allowed (ablations branch with a new config) and logged.
  AR_CHECK(j.value("schema_version", -1) == kCheckpointSchemaVersion, path, ": schema_version ",
           j.value("schema_version", -1), " is not the one this build reads (", kCheckpointSchemaVersion, ")");
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
