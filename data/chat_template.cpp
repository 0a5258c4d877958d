#include "data/chat_template.h"

#include <regex>

#include "trainer/common/error.h"

namespace anchor::data {
namespace {

const char* const kQwenSystem = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

// A Jinja string literal's escapes (\n, \t, \', \", \\) as characters.
std::string unescape_jinja(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      const char n = s[++i];
      out += n == 'n' ? '\n' : n == 't' ? '\t' : n;
    } else {
      out += s[i];
    }
  }
  return out;
}

// Jinja's trim filter (Python str.strip()): ASCII whitespace and the separators Python counts.
std::string trim(const std::string& s) {
  auto space_at = [&](size_t i, bool backwards, size_t* length) -> bool {
    // ASCII whitespace and \x1c-\x1f; the multi-byte spaces: U+0085, U+00A0, U+1680,
    // U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000.
    static const std::vector<std::string> kMultiByte = {
        "\xC2\x85", "\xC2\xA0", "\xE1\x9A\x80", "\xE2\x80\x80", "\xE2\x80\x81", "\xE2\x80\x82", "\xE2\x80\x83",
        "\xE2\x80\x84", "\xE2\x80\x85", "\xE2\x80\x86", "\xE2\x80\x87", "\xE2\x80\x88", "\xE2\x80\x89",
        "\xE2\x80\x8A", "\xE2\x80\xA8", "\xE2\x80\xA9", "\xE2\x80\xAF", "\xE2\x81\x9F", "\xE3\x80\x80"};
    const auto c = static_cast<unsigned char>(backwards ? s[i - 1] : s[i]);
    if ((c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20)) {
      *length = 1;
      return true;
    }
    for (const std::string& m : kMultiByte) {
      if (backwards ? (i >= m.size() && s.compare(i - m.size(), m.size(), m) == 0) : s.compare(i, m.size(), m) == 0) {
        *length = m.size();
        return true;
      }
    }
    return false;
  };
  size_t b = 0, e = s.size(), n = 0;
  while (b < e && space_at(b, false, &n)) b += n;
  while (e > b && space_at(e, true, &n)) e -= n;
  return s.substr(b, e - b);
}

}  // namespace

void check_chat_roles(const std::vector<ChatMessage>& messages, const std::string& where) {
  AR_CHECK(!messages.empty(), where, ": a conversation needs at least one message");
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string& r = messages[i].role;
    AR_CHECK(r == "system" || r == "user" || r == "assistant", where, ": messages[", i, "].role is '", r,
             "' (expected system, user or assistant)");
  }
}

ChatTemplate::ChatTemplate(const std::string& spec, const std::string& key, const std::string& model_template,
                           const std::string& template_source, const std::string& bos_text) {
  const std::string presets = "auto, plain, chatml, llama3, qwen";
  if (spec == "auto") {
    AR_CHECK(!model_template.empty(), key, ": 'auto' uses the model's chat template, but ", template_source,
             " has none (no chat_template in tokenizer_config.json, no chat_template.jinja); set ", key,
             " to plain, chatml, llama3, qwen or a string containing {prompt}");
    add_special_ = false;  // the template writes BOS itself, as apply_chat_template does
    origin_ = template_source;
    if (contains(model_template, "<|start_header_id|>") && contains(model_template, "<|end_header_id|>") &&
        contains(model_template, "<|eot_id|>")) {
      family_ = Family::llama3;
      if (contains(model_template, "bos_token")) {
        AR_CHECK(!bos_text.empty(), template_source, ": the chat template writes bos_token, but the tokenizer defines none");
        bos_text_ = bos_text;
      }
      if (contains(model_template, "Cutting Knowledge Date")) {
        // Llama 3.1's default date; templates that use today's date (strftime_now) get it too,
        // so that a run renders the same prompts whenever it is resumed.
        std::smatch m;
        const std::regex date(R"re(date_string\s*=\s*["']([^"']+)["'])re");
        llama3_date_ = std::regex_search(model_template, m, date) ? m[1].str() : "26 Jul 2024";
      }
      return;
    }
    if (contains(model_template, "<|im_start|>") && contains(model_template, "<|im_end|>")) {
      family_ = Family::chatml;
      // The default system prompt: a literal system turn in the template (SmolLM2, Qwen2.5).
      std::smatch m;
      const std::regex system(R"re(<\|im_start\|>system(?:\\n|\n)([^<'"{}]*)<\|im_end\|>)re");
      if (std::regex_search(model_template, m, system)) default_system_ = unescape_jinja(m[1].str());
      strip_think_ = contains(model_template, "</think>");
      return;
    }
    AR_FAIL(template_source, ": the chat template is not one anchor-rl recognises (known families: chatml — SmolLM2, "
            "Qwen2, Qwen2.5, Qwen3 — and llama3); set ", key, " to plain, chatml, llama3, qwen or a string containing "
            "{prompt} and check the rendered prompts (anchor-rl generate --chat prints them)");
  }
  origin_ = key;
  if (spec == "chatml") {
    family_ = Family::chatml;
  } else if (spec == "qwen") {
    family_ = Family::chatml;
    default_system_ = kQwenSystem;
  } else if (spec == "llama3") {
    family_ = Family::llama3;  // the tokenizer adds <|begin_of_text|> (add_special)
  } else {
    family_ = Family::plain;
    format_ = spec == "plain" ? "{prompt}" : spec;
    AR_CHECK(format_.find("{prompt}") != std::string::npos, key, ": '", spec, "' is neither a preset (", presets,
             ") nor a template containing {prompt}");
  }
}

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const {
  check_chat_roles(messages, origin_);
  std::string out;
  switch (family_) {
    case Family::plain: {
      AR_CHECK(messages.size() == 1 && messages[0].role == "user", origin_, ": the plain format '", format_,
               "' renders one user prompt, not a conversation of ", messages.size(),
               " message(s); use a chat template (auto, chatml, llama3, qwen)");
      out = format_;
      out.replace(out.find("{prompt}"), 8, messages[0].content);
      return out;
    }
    case Family::chatml: {
      if (!default_system_.empty() && messages[0].role != "system")
        out += "<|im_start|>system\n" + default_system_ + "<|im_end|>\n";
      size_t last_user = 0;
      for (size_t i = 0; i < messages.size(); ++i)
        if (messages[i].role == "user") last_user = i;
      for (size_t i = 0; i < messages.size(); ++i) {
        std::string content = messages[i].content;
        const size_t think_end = content.rfind("</think>");
        if (strip_think_ && messages[i].role == "assistant" && i < last_user && think_end != std::string::npos) {
          content = content.substr(think_end + 8);
          content.erase(0, content.find_first_not_of('\n') == std::string::npos ? content.size()
                                                                                  : content.find_first_not_of('\n'));
        }
        out += "<|im_start|>" + messages[i].role + "\n" + content + "<|im_end|>\n";
      }
      if (add_generation_prompt) out += "<|im_start|>assistant\n";
      return out;
    }
    case Family::llama3: {
      auto turn = [](const std::string& role, const std::string& content) {
        return "<|start_header_id|>" + role + "<|end_header_id|>\n\n" + trim(content) + "<|eot_id|>";
      };
      out = bos_text_;
      size_t first = 0;
      if (!llama3_date_.empty()) {
        std::string system;
        if (messages[0].role == "system") {
          system = trim(messages[0].content);
          first = 1;
        }
        out += "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: " +
               llama3_date_ + "\n\n" + system + "<|eot_id|>";
      }
      for (size_t i = first; i < messages.size(); ++i) out += turn(messages[i].role, messages[i].content);
      if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      return out;
    }
  }
  return out;
}

std::string ChatTemplate::describe() const {
  switch (family_) {
    case Family::plain: return "plain format '" + format_ + "'";
    case Family::chatml:
      return "chatml" + (default_system_.empty() ? std::string(", no default system prompt")
                                                 : ", default system prompt '" + default_system_ + "'") +
             (strip_think_ ? ", <think> of earlier turns dropped" : "") + " (" + origin_ + ")";
    case Family::llama3:
      return "llama3" + (llama3_date_.empty() ? std::string() : ", 3.1 system header dated " + llama3_date_) + " (" +
             origin_ + ")";
  }
  return "";
}

}  // namespace anchor::data
