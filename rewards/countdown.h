// Countdown verifier: does an arithmetic expression use exactly the given numbers, each once,
// with + - * / and parentheses, and evaluate to the target? A real recursive-descent parser
// over exact rationals, with bounded input length and nesting depth: never eval, never a
// shell, never a crash or a hang on arbitrary text.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace anchor::rewards {

struct CountdownResult {
  bool parsed = false;        // a well-formed expression
  bool numbers_ok = false;    // uses exactly the given numbers (as a multiset)
  bool correct = false;       // parsed, numbers_ok and value == target
  std::string error;          // why not, for logs
};

// Limits that bound the parser's work.
constexpr size_t kCountdownMaxExpressionChars = 256;
constexpr int kCountdownMaxDepth = 32;

CountdownResult verify_countdown(std::string_view expression, const std::vector<int64_t>& numbers, int64_t target);

// The expression a response commits to: the text of the last <answer>...</answer>, else the
// rest of the line after the last "Answer:", else the last non-empty line. Anything from the
// first '=' on is dropped ("(8 - 5) * 8 = 24" -> "(8 - 5) * 8").
std::string extract_countdown_expression(std::string_view response);

}  // namespace anchor::rewards
