// TensorBoard event files (logging.tensorboard): RUN_DIR/tensorboard/events.out.tfevents.*,
// read by TensorBoard (and `wandb sync --sync-tensorboard RUN_DIR`). Each metrics line's numbers
// become scalars tagged by their key path ("reward_mean", "eval/accuracy", "perf/step_seconds");
// the resolved config is a text summary. A resumed run writes a new file that starts with
// SessionLog.START at its first step, so TensorBoard drops the events of the steps that are
// redone and the curve reads as one run.
//
// Records are TFRecords: length (uint64 LE), masked CRC32C of the length, the serialised Event,
// masked CRC32C of the data. Torch-free.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <fstream>
#include <string>

namespace anchor {

class TensorBoardWriter {
 public:
  // Creates `dir` and a new event file in it (named after the time, after any existing one).
  explicit TensorBoardWriter(const std::string& dir);

  // Every number of `line` (nested objects give "a/b" tags; booleans, strings, arrays skipped).
  void add_scalars(int64_t step, const nlohmann::json& line);
  // A text summary (TensorBoard's text plugin renders it as Markdown).
  void add_text(int64_t step, const std::string& tag, const std::string& markdown);
  // SessionLog.START: TensorBoard drops the earlier events of steps >= step.
  void add_session_start(int64_t step);

  const std::string& path() const { return path_; }

 private:
  void write_record(const std::string& data);

  std::string path_;
  std::ofstream out_;
};

// masked CRC32C of TFRecord framing (Boost.CRC computes the CRC32C).
uint32_t tfrecord_masked_crc(const void* data, size_t size);

}  // namespace anchor
