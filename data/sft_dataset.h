// SFT datasets: JSONL rows in one of three shapes, chosen per row —
//   {"messages": [{role, content}, ...]}  a chat (system / user / assistant turns, several
//                                         turns allowed), rendered with the chat template;
//                                         targets are the assistant turns
//   {prompt_key: "...", response_key: "..."}  one user turn and its answer
//   {text_key: "..."}                      plain text: every token is a target
// Extra fields are kept (e.g. a per-sentence "score" for conditional training). A row of none
// of these shapes is an error naming file:line. Torch-free.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "data/chat_template.h"

namespace anchor::data {

struct SftRecord {
  enum class Kind { messages, prompt_response, text };
  Kind kind = Kind::text;
  // messages: the conversation; prompt_response: {user: prompt, assistant: response};
  // text: one "assistant" turn holding the text (so every transformation sees the target text
  // in the assistant turns).
  std::vector<ChatMessage> messages;
  nlohmann::json row;  // the whole JSON object
  int64_t line = 0;    // 1-based line in the file
};

struct SftKeys {
  std::string prompt = "prompt";
  std::string response = "response";
  std::string text = "text";
};

class SftDataset {
 public:
  static SftDataset load_jsonl(const std::string& path, const SftKeys& keys);
  size_t size() const { return records_.size(); }
  const SftRecord& operator[](size_t i) const { return records_.at(i); }
  SftRecord& operator[](size_t i) { return records_.at(i); }
  const std::string& path() const { return path_; }
  // file:line of row i, for errors.
  std::string where(size_t i) const { return path_ + ":" + std::to_string(records_.at(i).line); }

 private:
  std::string path_;
  std::vector<SftRecord> records_;
};

const char* sft_record_kind_name(SftRecord::Kind kind);

}  // namespace anchor::data
