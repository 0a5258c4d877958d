// Prompt datasets: JSONL files with one object per line holding a prompt (key configurable,
// default "prompt"), usually an "answer", and any extra fields (kept for reward functions,
// e.g. countdown "numbers" / "target"). A malformed line is an error naming file:line.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace anchor::data {

struct Example {
  std::string prompt;
  nlohmann::json row;  // the whole JSON object
  int64_t line = 0;    // 1-based line in the file
};

class PromptDataset {
 public:
  static PromptDataset load_jsonl(const std::string& path, const std::string& prompt_key = "prompt");
  size_t size() const { return examples_.size(); }
  const Example& operator[](size_t i) const { return examples_.at(i); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::vector<Example> examples_;
};

// Wraps a prompt in a template: a preset name ("plain", "chatml", "llama3") or any string
// containing "{prompt}".
class PromptTemplate {
 public:
  PromptTemplate(const std::string& spec, const std::string& config_key);
  std::string apply(const std::string& prompt) const;
  const std::string& format() const { return format_; }

 private:
  std::string format_;
};

// Epoch-wise shuffled order over a dataset, reproducible from (seed, epoch) alone, so that a
// resumed run only needs {epoch, position} to continue exactly. Fisher-Yates over a
// std::mt19937_64 stream (both fully specified by the C++ standard, unlike std::shuffle).
class DataCursor {
 public:
  DataCursor(size_t dataset_size, uint64_t seed, bool shuffle);
  // The next n example indices, wrapping into the next epoch as needed.
  std::vector<size_t> next(size_t n);
  int64_t epoch() const { return epoch_; }
  int64_t position() const { return position_; }
  void restore(int64_t epoch, int64_t position);

 private:
  void build_order();
  size_t size_;
  uint64_t seed_;
  bool shuffle_;
  int64_t epoch_ = 0;
  int64_t position_ = 0;
  std::vector<size_t> order_;
};

}  // namespace anchor::data
