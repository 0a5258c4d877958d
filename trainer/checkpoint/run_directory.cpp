#include "trainer/checkpoint/run_directory.h"

#include <filesystem>

#include "trainer/common/error.h"
#include "trainer/common/file_util.h"
#include "trainer/common/log.h"

namespace anchor {

namespace fs = std::filesystem;

RunDirectory::RunDirectory(const std::string& path, bool resuming, const std::string& resolved_yaml,
                           const nlohmann::json& run_info, bool tensorboard)
    : path_(path), resuming_(resuming), resolved_yaml_(resolved_yaml), tensorboard_(tensorboard) {
  if (!resuming)
    AR_CHECK(!fs::exists(fs::path(path) / "metrics.jsonl"), path,
             " already holds a run (metrics.jsonl); continue it with --resume latest or choose another --run-dir");
  fs::create_directories(path);
  log::add_file_sink((fs::path(path) / "train.log").string());
  write_text_file_atomic((fs::path(path) / "config.yaml").string(), resolved_yaml);
  write_text_file_atomic((fs::path(path) / "run.json").string(), run_info.dump(2) + "\n");
}

void RunDirectory::open_metrics(int64_t keep_through_step) {
  const std::string file = (fs::path(path_) / "metrics.jsonl").string();
  if (fs::exists(file)) {
    std::ifstream in(file);
    std::string line, kept;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      const auto j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_discarded() && j.value("step", int64_t{0}) <= keep_through_step) kept += line + "\n";
    }
    write_text_file_atomic(file, kept);
  }
  metrics_.open(file, std::ios::app);
  AR_CHECK(metrics_.good(), file, ": cannot open for appending");
  if (!tensorboard_) return;
  events_ = std::make_unique<TensorBoardWriter>((fs::path(path_) / "tensorboard").string());
  if (resuming_) events_->add_session_start(keep_through_step + 1);
  std::string config_text;  // indented: a Markdown code block
  for (size_t begin = 0; begin < resolved_yaml_.size();) {
    const size_t end = std::min(resolved_yaml_.find('\n', begin), resolved_yaml_.size());
    config_text += "    " + resolved_yaml_.substr(begin, end - begin) + "\n";
    begin = end + 1;
  }
  events_->add_text(keep_through_step, "config", config_text);
}

void RunDirectory::write_metrics(const nlohmann::json& line) {
  metrics_ << line.dump() << "\n";
  metrics_.flush();
  if (events_) events_->add_scalars(line.value("step", int64_t{0}), line);
}

RunDirectory::~RunDirectory() = default;

}  // namespace anchor
