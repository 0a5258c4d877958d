// Prompt datasets: JSONL files with one object per line holding a prompt (key configurable,
// default "prompt") or a chat conversation ("messages": [{"role", "content"}, ...], roles
// system / user / assistant), usually an "answer", and any extra fields (kept for reward
// functions, e.g. countdown "numbers" / "target"). A malformed line is an error naming
// file:line.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "data/chat_template.h"

namespace anchor::data {

struct Example {
  std::string prompt;                 // the prompt field, or the last user turn of `messages`
  std::vector<ChatMessage> messages;  // empty when the row has a plain prompt
  nlohmann::json row;  // the whole JSON object
  int64_t line = 0;    // 1-based line in the file
  // The conversation to render: `messages`, or the prompt as one user turn.
  std::vector<ChatMessage> conversation() const {
    return messages.empty() ? std::vector<ChatMessage>{{"user", prompt}} : messages;
  }
};

// A JSONL file's objects with their 1-based line numbers (blank lines skipped). Not JSON, not
// an object, or no rows at all is an error naming the file (and line); `what` names the file's
// role in errors ("dataset").
std::vector<std::pair<int64_t, nlohmann::json>> read_jsonl_objects(const std::string& path, const std::string& what);
// A "messages" value: a non-empty list of {role, content} with known roles; `where` is file:line.
std::vector<ChatMessage> messages_from_json(const nlohmann::json& messages, const std::string& where);

class PromptDataset {
 public:
  // Rows need prompt_key or "messages" (a conversation that ends with a user turn: the model
  // answers it).
  static PromptDataset load_jsonl(const std::string& path, const std::string& prompt_key = "prompt");
  // Every row can be rendered by `chat` (a plain format renders prompts, not conversations);
  // the first row that cannot is an error naming file:line and `key`.
  void check_renders_with(const ChatTemplate& chat, const std::string& key) const;
  size_t size() const { return examples_.size(); }
  const Example& operator[](size_t i) const { return examples_.at(i); }
  const std::string& path() const { return path_; }
  // Every row passes `problem(row)` ("" = fine); the first that does not is an error naming
  // file:line (e.g. a countdown row without numbers, checked at load time, not at rollout).
  void check_rows(const std::function<std::string(const nlohmann::json&)>& problem) const;
  // The rows `rows` (indices into this dataset), in that order.
  PromptDataset subset(const std::vector<size_t>& rows) const;

 private:
  std::string path_;
  std::vector<Example> examples_;
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
