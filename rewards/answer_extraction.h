// Final-answer extraction and numeric equivalence for verifiable math rewards.
// Works on arbitrary model output: bounded work, no regex backtracking, never throws.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace anchor::rewards {

// The answer a response commits to, tried in order:
//   1. after the last "####" (GSM8K style), up to the end of that line;
//   2. the contents of the last \boxed{...} (balanced braces);
//   3. the last number in the text.
std::optional<std::string> extract_answer(std::string_view response);

// Parses a number as people write it: "1,234", "-3.50", "$12", "45%", "3/4", "1e3".
std::optional<double> parse_number(std::string_view text);

// True when both parse as numbers within 1e-6 relative tolerance, or are equal after
// trimming whitespace, a trailing period and surrounding $...$.
bool answers_equivalent(std::string_view predicted, std::string_view reference);

}  // namespace anchor::rewards
