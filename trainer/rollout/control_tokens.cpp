#include "trainer/rollout/control_tokens.h"

#include <cctype>

namespace anchor {

const char* control_name(Control c) {
  switch (c) {
    case Control::good: return "good";
    case Control::bad: return "bad";
    case Control::none: return "none";
  }
  return "none";
}

const char* control_token_text(Control c) {
  switch (c) {
    case Control::good: return kGoodToken;
    case Control::bad: return kBadToken;
    case Control::none: return "";
  }
  return "";
}

std::string with_indicator(const std::string& user_message) {
  std::string out = user_message;
  while (!out.empty() && std::isspace(static_cast<unsigned char>(out.back()))) out.pop_back();
  if (!out.empty() && std::isalnum(static_cast<unsigned char>(out.back()))) out += '.';
  out += ' ';
  out += kIndicatorToken;
  return out;
}

}  // namespace anchor
