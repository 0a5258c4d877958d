#include "rewards/countdown.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

namespace anchor::rewards {
namespace {

// Exact rational with overflow detection (an overflowing expression is simply wrong).
struct Rational {
  __int128 num = 0, den = 1;
};

// Operands stay below 2^62, so every product of two fits in __int128 before normalising.
constexpr __int128 kLimit = static_cast<__int128>(1) << 62;

__int128 gcd128(__int128 a, __int128 b) {
  if (a < 0) a = -a;
  if (b < 0) b = -b;
  while (b != 0) {
    __int128 t = a % b;
    a = b;
    b = t;
  }
  return a;
}

bool normalise(Rational& r) {
  if (r.den == 0) return false;
  if (r.den < 0) { r.num = -r.num; r.den = -r.den; }
  __int128 g = gcd128(r.num, r.den);
  if (g > 1) { r.num /= g; r.den /= g; }
  return r.num < kLimit && r.num > -kLimit && r.den < kLimit;
}

class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  bool parse(Rational& out) {
    if (!expr(out, 0)) return false;
    skip_space();
    if (pos_ != s_.size()) return fail("unexpected '" + std::string(1, s_[pos_]) + "'");
    return true;
  }

  const std::vector<int64_t>& literals() const { return literals_; }
  const std::string& error() const { return error_; }

 private:
  bool fail(std::string why) {
    if (error_.empty()) error_ = std::move(why);
    return false;
  }
  void skip_space() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  bool expr(Rational& out, int depth) {
    if (!term(out, depth)) return false;
    for (;;) {
      skip_space();
      if (pos_ >= s_.size() || (s_[pos_] != '+' && s_[pos_] != '-')) return true;
      const char op = s_[pos_++];
      Rational rhs;
      if (!term(rhs, depth)) return false;
      out = Rational{op == '+' ? out.num * rhs.den + rhs.num * out.den : out.num * rhs.den - rhs.num * out.den,
                     out.den * rhs.den};
      if (!normalise(out)) return fail("value out of range");
    }
  }
  bool term(Rational& out, int depth) {
    if (!factor(out, depth)) return false;
    for (;;) {
      skip_space();
      if (pos_ >= s_.size() || (s_[pos_] != '*' && s_[pos_] != '/')) return true;
      const char op = s_[pos_++];
      Rational rhs;
      if (!factor(rhs, depth)) return false;
      if (op == '/') {
        if (rhs.num == 0) return fail("division by zero");
        out = Rational{out.num * rhs.den, out.den * rhs.num};
      } else {
        out = Rational{out.num * rhs.num, out.den * rhs.den};
      }
      if (!normalise(out)) return fail("value out of range");
    }
  }
  bool factor(Rational& out, int depth) {
    if (depth > kCountdownMaxDepth) return fail("nesting deeper than " + std::to_string(kCountdownMaxDepth));
    skip_space();
    if (pos_ >= s_.size()) return fail("expression ends early");
    if (s_[pos_] == '(') {
      ++pos_;
      if (!expr(out, depth + 1)) return false;
      skip_space();
      if (pos_ >= s_.size() || s_[pos_] != ')') return fail("missing ')'");
      ++pos_;
      return true;
    }
    if (!std::isdigit(static_cast<unsigned char>(s_[pos_]))) return fail("expected a number or '('");
    int64_t value = 0;
    int digits = 0;
    while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) {
      if (++digits > 12) return fail("number too long");
      value = value * 10 + (s_[pos_++] - '0');
    }
    literals_.push_back(value);
    out = Rational{value, 1};
    return true;
  }

  std::string_view s_;
  size_t pos_ = 0;
  std::vector<int64_t> literals_;
  std::string error_;
};

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

}  // namespace

CountdownResult verify_countdown(std::string_view expression, const std::vector<int64_t>& numbers, int64_t target) {
  CountdownResult result;
  expression = trim(expression);
  if (expression.empty()) {
    result.error = "empty expression";
    return result;
  }
  if (expression.size() > kCountdownMaxExpressionChars) {
    result.error = "expression longer than " + std::to_string(kCountdownMaxExpressionChars) + " characters";
    return result;
  }
  Parser parser(expression);
  Rational value;
  if (!parser.parse(value)) {
    result.error = parser.error();
    return result;
  }
  result.parsed = true;
  std::vector<int64_t> used = parser.literals(), given = numbers;
  std::sort(used.begin(), used.end());
  std::sort(given.begin(), given.end());
  result.numbers_ok = used == given;
  if (!result.numbers_ok) {
    result.error = "does not use exactly the given numbers";
    return result;
  }
  result.correct = value.den == 1 && value.num == target;
  if (!result.correct) result.error = "value differs from the target";
  return result;
}

std::string extract_countdown_expression(std::string_view response) {
  std::string_view candidate;
  const size_t close = response.rfind("</answer>");
  const size_t open = close == std::string_view::npos ? std::string_view::npos : response.rfind("<answer>", close);
  if (open != std::string_view::npos) {
    candidate = response.substr(open + 8, close - open - 8);
  } else if (size_t at = response.rfind("Answer:"); at != std::string_view::npos) {
    candidate = response.substr(at + 7);
    candidate = candidate.substr(0, candidate.find('\n'));
  } else {
    std::string_view rest = trim(response);
    const size_t nl = rest.rfind('\n');
    candidate = nl == std::string_view::npos ? rest : rest.substr(nl + 1);
  }
  candidate = candidate.substr(0, candidate.find('='));
  return std::string(trim(candidate));
}

}  // namespace anchor::rewards
