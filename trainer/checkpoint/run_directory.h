// RunDirectory: what every training command writes besides checkpoints — the resolved
// config, run.json (origin of the weights, command line), the log file and metrics.jsonl.
// A directory that already holds a run is only reopened when resuming, so nothing already
// written is overwritten by accident.
#pragma once

#include <nlohmann/json.hpp>

#include <fstream>
#include <string>

namespace anchor {

class RunDirectory {
 public:
  // Creates (or, when resuming, reopens) `path`; writes config.yaml and run.json.
  RunDirectory(const std::string& path, bool resuming, const std::string& resolved_yaml, const nlohmann::json& run_info);

  const std::string& path() const { return path_; }

  // Opens metrics.jsonl for appending; lines of steps after `keep_through_step` (written by
  // an interrupted run after its last checkpoint) are dropped first.
  void open_metrics(int64_t keep_through_step);
  void write_metrics(const nlohmann::json& line);

 private:
  std::string path_;
  std::ofstream metrics_;
};

}  // namespace anchor
