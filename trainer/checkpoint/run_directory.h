// RunDirectory: what every training command writes besides checkpoints — the resolved
// config, run.json (origin of the weights, command line), the log file and metrics.jsonl.
// A directory that already holds a run is only reopened when resuming, so nothing already
// written is overwritten by accident.
#pragma once

#include <nlohmann/json.hpp>

#include <fstream>
#include <memory>
#include <string>

#include "trainer/checkpoint/tensorboard_events.h"

namespace anchor {

class RunDirectory {
 public:
  // Creates (or, when resuming, reopens) `path`; writes config.yaml and run.json. With
  // `tensorboard`, metrics lines are also written as TensorBoard scalars (tensorboard_events.h).
  RunDirectory(const std::string& path, bool resuming, const std::string& resolved_yaml, const nlohmann::json& run_info,
               bool tensorboard = false);
  ~RunDirectory();

  const std::string& path() const { return path_; }

  // Opens metrics.jsonl for appending; lines of steps after `keep_through_step` (written by
  // an interrupted run after its last checkpoint) are dropped first. A new TensorBoard file
  // starts with the config and, when resuming, SessionLog.START at keep_through_step + 1.
  void open_metrics(int64_t keep_through_step);
  void write_metrics(const nlohmann::json& line);

 private:
  std::string path_;
  bool resuming_ = false;
  std::string resolved_yaml_;
  bool tensorboard_ = false;
  std::ofstream metrics_;
  std::unique_ptr<TensorBoardWriter> events_;
};

}  // namespace anchor
