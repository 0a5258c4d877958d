#include "trainer/sft/sft_examples.h"

#include <algorithm>

#include "trainer/common/error.h"

namespace anchor::sft {
namespace {

using data::ChatMessage;
using data::SftRecord;

// Byte ranges of the assistant turns in chat.render(messages, false): each turn's text starts
// where the rendering of the turns before it plus the generation prompt ends, and runs to the
// end of the rendering that includes it (its end-of-turn marker).
std::vector<std::pair<size_t, size_t>> assistant_ranges(const std::vector<ChatMessage>& messages,
                                                        const data::ChatTemplate& chat, const std::string& full,
                                                        const std::string& where) {
  std::vector<std::pair<size_t, size_t>> ranges;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (messages[i].role != "assistant") continue;
    const std::vector<ChatMessage> before(messages.begin(), messages.begin() + static_cast<long>(i));
    const std::string head = before.empty() && !chat.renders_conversations() ? "" : chat.render(before, true);
    const std::vector<ChatMessage> upto(messages.begin(), messages.begin() + static_cast<long>(i) + 1);
    const std::string with_turn = chat.render(upto, false);
    AR_CHECK(with_turn.compare(0, head.size(), head) == 0 && full.compare(0, with_turn.size(), with_turn) == 0, where,
             ": the chat template (", chat.describe(), ") renders assistant turn ", i,
             " differently depending on what follows it (e.g. a template that drops earlier <think> blocks); "
             "give one assistant turn per row");
    ranges.emplace_back(head.size(), with_turn.size());
  }
  return ranges;
}

}  // namespace

int64_t SftExample::loss_tokens() const {
  int64_t n = 0;
  for (uint8_t l : target_loss) n += l;
  return n;
}

SftExample tokenize_sft_record(const SftRecord& record, const Tokenizer& tokenizer, const data::ChatTemplate& chat,
                               const SftTokenization& options, const std::string& where) {
  SftExample ex;
  const int64_t eos = tokenizer.eos_id();
  switch (record.kind) {
    case SftRecord::Kind::prompt_response: {
      ex.prompt_ids = tokenizer.encode(chat.render({record.messages.at(0)}, true), chat.encode_with_special_tokens());
      AR_CHECK(!ex.prompt_ids.empty(), where, ": the prompt renders to no tokens");
      ex.target_ids = tokenizer.encode(record.messages.at(1).content, false);
      ex.target_ids.push_back(eos);
      ex.target_loss.assign(ex.target_ids.size(), 1);
      break;
    }
    case SftRecord::Kind::text: {
      std::vector<int64_t> ids = tokenizer.encode(record.messages.at(0).content, true);
      AR_CHECK(!ids.empty(), where, ": empty text");
      ids.push_back(eos);
      ex.prompt_ids.assign(ids.begin(), ids.begin() + 1);
      ex.target_ids.assign(ids.begin() + 1, ids.end());
      ex.target_loss.assign(ex.target_ids.size(), 1);
      break;
    }
    case SftRecord::Kind::messages: {
      AR_CHECK(chat.renders_conversations(), where, ": a 'messages' conversation needs a chat template, but "
               "data.template is a plain format (", chat.describe(), "); use auto, chatml, llama3 or qwen");
      const std::string full = chat.render(record.messages, false);
      const auto ranges = assistant_ranges(record.messages, chat, full, where);
      const Encoding enc = tokenizer.encode_with_spans(full, chat.encode_with_special_tokens());
      AR_CHECK(enc.ids.size() >= 2, where, ": the conversation renders to fewer than two tokens");
      ex.prompt_ids.assign(enc.ids.begin(), enc.ids.begin() + 1);
      ex.target_ids.assign(enc.ids.begin() + 1, enc.ids.end());
      for (size_t t = 1; t < enc.ids.size(); ++t) {
        const auto [b, e] = enc.spans[t];
        bool assistant = false;
        for (const auto& [rb, re] : ranges) assistant = assistant || (e > b && b >= rb && b < re);
        ex.target_loss.push_back(assistant ? 1 : 0);
      }
      break;
    }
  }
  if (options.loss_on_prompt) {  // every token after the first is a target
    std::vector<int64_t> targets(ex.prompt_ids.begin() + 1, ex.prompt_ids.end());
    targets.insert(targets.end(), ex.target_ids.begin(), ex.target_ids.end());
    ex.prompt_ids.resize(1);
    ex.target_ids = std::move(targets);
    ex.target_loss.assign(ex.target_ids.size(), 1);
  }
  for (size_t t = 0; t < ex.target_ids.size(); ++t)
    if (std::find(options.masked_ids.begin(), options.masked_ids.end(), ex.target_ids[t]) != options.masked_ids.end())
      ex.target_loss[t] = 0;
  const int64_t total = static_cast<int64_t>(ex.prompt_ids.size() + ex.target_ids.size());
  AR_CHECK(options.max_tokens <= 0 || total <= options.max_tokens, where, ": ", total,
           " tokens, more than the model's ", options.max_tokens, " positions");
  AR_CHECK(ex.loss_tokens() > 0, where, ": no token of this row is in the loss");
  return ex;
}

}  // namespace anchor::sft
