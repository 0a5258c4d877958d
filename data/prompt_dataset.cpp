#include "data/prompt_dataset.h"

#include <fstream>
#include <random>

#include "trainer/common/error.h"

namespace anchor::data {

std::vector<ChatMessage> messages_from_json(const nlohmann::json& m, const std::string& where) {
  AR_CHECK(m.is_array() && !m.empty(), where, ": 'messages' must be a non-empty list of {role, content}");
  std::vector<ChatMessage> messages;
  for (size_t i = 0; i < m.size(); ++i) {
    AR_CHECK(m[i].is_object() && m[i].contains("role") && m[i].at("role").is_string() && m[i].contains("content") &&
                 m[i].at("content").is_string(),
             where, ": messages[", i, "] must be {\"role\": string, \"content\": string}");
    messages.push_back({m[i].at("role").get<std::string>(), m[i].at("content").get<std::string>()});
  }
  check_chat_roles(messages, where);
  return messages;
}

std::vector<std::pair<int64_t, nlohmann::json>> read_jsonl_objects(const std::string& path, const std::string& what) {
  std::ifstream in(path);
  AR_CHECK(in.good(), path, ": cannot open ", what);
  std::vector<std::pair<int64_t, nlohmann::json>> rows;
  std::string line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank lines are allowed
    nlohmann::json row;
    try {
      row = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range (number overflow)
      AR_FAIL(path, ":", line_no, ": not valid JSON (", e.what(), ")");
    }
    AR_CHECK(row.is_object(), path, ":", line_no, ": expected a JSON object per line");
    rows.emplace_back(line_no, std::move(row));
  }
  AR_CHECK(!rows.empty(), path, ": ", what, " is empty");
  return rows;
}

PromptDataset PromptDataset::load_jsonl(const std::string& path, const std::string& prompt_key) {
  PromptDataset ds;
  ds.path_ = path;
  for (auto& [line_no, row] : read_jsonl_objects(path, "dataset")) {
    Example ex;
    ex.line = line_no;
    if (row.contains("messages") && !row.contains(prompt_key)) {
      ex.messages = messages_from_json(row.at("messages"), path + ":" + std::to_string(line_no));
      AR_CHECK(ex.messages.back().role == "user", path, ":", line_no,
               ": the conversation ends with a '", ex.messages.back().role, "' turn; a prompt ends with the user turn the model answers");
      ex.prompt = ex.messages.back().content;
    } else {
      AR_CHECK(row.contains(prompt_key) && row.at(prompt_key).is_string(), path, ":", line_no,
               ": missing string field '", prompt_key, "' (or a 'messages' conversation)");
      ex.prompt = row.at(prompt_key).get<std::string>();
    }
    ex.row = std::move(row);
    ds.examples_.push_back(std::move(ex));
  }
  return ds;
}

void PromptDataset::check_rows(const std::function<std::string(const nlohmann::json&)>& problem) const {
  for (const Example& ex : examples_)
    if (const std::string p = problem(ex.row); !p.empty()) AR_FAIL(path_, ":", ex.line, ": ", p);
}

PromptDataset PromptDataset::subset(const std::vector<size_t>& rows) const {
  PromptDataset out;
  out.path_ = path_;
  for (size_t r : rows) out.examples_.push_back(examples_.at(r));
  return out;
}

void PromptDataset::check_renders_with(const ChatTemplate& chat, const std::string& key) const {
  if (chat.renders_conversations()) return;
  for (const Example& ex : examples_)
    AR_CHECK(ex.messages.empty(), path_, ":", ex.line, ": a 'messages' conversation needs a chat template, but ", key,
             " is a plain format (", chat.describe(), "); use auto, chatml, llama3 or qwen");
}

DataCursor::DataCursor(size_t dataset_size, uint64_t seed, bool shuffle)
    : size_(dataset_size), seed_(seed), shuffle_(shuffle) {
  AR_CHECK(size_ > 0, "DataCursor: empty dataset");
  build_order();
}

void DataCursor::build_order() {
  order_.resize(size_);
  for (size_t i = 0; i < size_; ++i) order_[i] = i;
  if (!shuffle_) return;
  std::mt19937_64 rng(seed_ * 1000003ull + static_cast<uint64_t>(epoch_));
  for (size_t i = size_ - 1; i > 0; --i) {
    const size_t j = static_cast<size_t>(rng() % (i + 1));
    std::swap(order_[i], order_[j]);
  }
}

std::vector<size_t> DataCursor::next(size_t n) {
  std::vector<size_t> out;
  out.reserve(n);
  while (out.size() < n) {
    if (position_ >= static_cast<int64_t>(size_)) {
      ++epoch_;
      position_ = 0;
      build_order();
    }
    out.push_back(order_[static_cast<size_t>(position_++)]);
  }
  return out;
}

void DataCursor::restore(int64_t epoch, int64_t position) {
  AR_CHECK(epoch >= 0 && position >= 0 && position <= static_cast<int64_t>(size_),
           "data cursor: cannot restore epoch ", epoch, " position ", position, " on a dataset of ", size_);
  epoch_ = epoch;
  position_ = position;
  build_order();
}

}  // namespace anchor::data
