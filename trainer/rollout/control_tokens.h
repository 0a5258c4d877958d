// The control tokens of the two SFT modes (docs/design.md, "Supervised modes"), as generation
// sees them: <|good|> / <|bad|> (conditional training) condition a response, [IND] (the
// context-dependency indicator) marks a user message. Torch-free: SFT data preparation and the
// sampler both read it.
#pragma once

#include <string>
#include <utility>

#include "trainer/common/enum_names.h"

namespace anchor {

inline constexpr const char* kGoodToken = "<|good|>";
inline constexpr const char* kBadToken = "<|bad|>";
inline constexpr const char* kIndicatorToken = "[IND]";

enum class Control { none, good, bad };
const char* control_name(Control c);        // none | good | bad
template <>
struct EnumNames<Control> {
  static constexpr std::pair<Control, const char*> values[] = {
      {Control::none, "none"}, {Control::good, "good"}, {Control::bad, "bad"}};
};
const char* control_token_text(Control c);  // <|good|> | <|bad|> | ""

// Appends " [IND]" to a user message, after a "." when it ends in a letter or digit (trailing
// whitespace is dropped first): "Who wrote it" -> "Who wrote it. [IND]", "Why?" -> "Why? [IND]".
std::string with_indicator(const std::string& user_message);

}  // namespace anchor
