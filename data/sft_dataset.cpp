#include "data/sft_dataset.h"

#include "data/prompt_dataset.h"
#include "trainer/common/error.h"

namespace anchor::data {

const char* sft_record_kind_name(SftRecord::Kind kind) {
  switch (kind) {
    case SftRecord::Kind::messages: return "messages";
    case SftRecord::Kind::prompt_response: return "prompt_response";
    case SftRecord::Kind::text: return "text";
  }
  return "?";
}

SftDataset SftDataset::load_jsonl(const std::string& path, const SftKeys& keys) {
  SftDataset ds;
  ds.path_ = path;
  for (auto& entry : read_jsonl_objects(path, "SFT dataset")) {
    const int64_t line = entry.first;  // not a structured binding: lambdas below capture it
    nlohmann::json& row = entry.second;
    const std::string where = path + ":" + std::to_string(line);
    SftRecord r;
    r.line = line;
    auto string_field = [&](const std::string& key) {
      AR_CHECK(row.at(key).is_string(), where, ": field '", key, "' must be a string, got ", row.at(key).type_name());
      return row.at(key).get<std::string>();
    };
    if (row.contains("messages")) {
      r.kind = SftRecord::Kind::messages;
      r.messages = messages_from_json(row.at("messages"), where);
      bool has_assistant = false;
      for (const auto& m : r.messages) has_assistant = has_assistant || m.role == "assistant";
      AR_CHECK(has_assistant, where, ": the conversation has no assistant turn to train on");
    } else if (row.contains(keys.prompt) || row.contains(keys.response)) {
      AR_CHECK(row.contains(keys.prompt) && row.contains(keys.response), where, ": a prompt/response row needs both '",
               keys.prompt, "' (data.prompt_key) and '", keys.response, "' (sft.response_key)");
      r.kind = SftRecord::Kind::prompt_response;
      r.messages = {{"user", string_field(keys.prompt)}, {"assistant", string_field(keys.response)}};
    } else if (row.contains(keys.text)) {
      r.kind = SftRecord::Kind::text;
      r.messages = {{"assistant", string_field(keys.text)}};
    } else {
      AR_FAIL(where, ": expected 'messages', '", keys.prompt, "' + '", keys.response, "', or '", keys.text,
              "' (data.prompt_key, sft.response_key, sft.text_key)");
    }
    r.row = std::move(row);
    ds.records_.push_back(std::move(r));
  }
  return ds;
}

}  // namespace anchor::data
