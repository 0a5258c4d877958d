#include "rewards/arithmetic_claims.h"

#include <cctype>

namespace anchor::rewards {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_word(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.'; }

// Reads an integer at i (up to 18 digits); advances i past it.
bool read_number(const std::string& s, size_t& i, int64_t& value) {
  const size_t start = i;
  while (i < s.size() && is_digit(s[i])) ++i;
  const size_t digits = i - start;
  if (digits == 0 || digits > 18) return false;
  // "1.5" or "3x": the digits run into a longer token.
  if (i < s.size() && (std::isalpha(static_cast<unsigned char>(s[i])) || s[i] == '_')) return false;
  if (i + 1 < s.size() && s[i] == '.' && is_digit(s[i + 1])) return false;
  value = std::stoll(s.substr(start, digits));
  return true;
}

void skip_spaces(const std::string& s, size_t& i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
}

bool read_operator(const std::string& s, size_t& i, char& op) {
  if (i >= s.size()) return false;
  const char c = s[i];
  if (c == '+' || c == '-' || c == '*' || c == '/') {
    op = c;
    ++i;
    return true;
  }
  if (c == 'x' && i + 1 < s.size() && (s[i + 1] == ' ' || is_digit(s[i + 1]))) {
    op = '*';
    ++i;
    return true;
  }
  if (s.compare(i, 2, "\xC3\x97") == 0) {  // ×
    op = '*';
    i += 2;
    return true;
  }
  return false;
}

bool evaluate(int64_t a, char op, int64_t b, int64_t& out) {
  switch (op) {
    case '+': return !__builtin_add_overflow(a, b, &out);
    case '-': return !__builtin_sub_overflow(a, b, &out);
    case '*': return !__builtin_mul_overflow(a, b, &out);
    case '/':
      if (b == 0 || a % b != 0) return false;
      out = a / b;
      return true;
  }
  return false;
}

}  // namespace

std::vector<ArithmeticClaim> find_arithmetic_claims(const std::string& text) {
  std::vector<ArithmeticClaim> claims;
  size_t i = 0;
  while (i < text.size()) {
    if (!is_digit(text[i]) || (i > 0 && is_word(text[i - 1]))) {
      ++i;
      continue;
    }
    ArithmeticClaim claim;
    claim.begin = i;
    size_t j = i;
    bool ok = read_number(text, j, claim.a);
    if (ok) skip_spaces(text, j);
    ok = ok && read_operator(text, j, claim.op);
    if (ok) skip_spaces(text, j);
    ok = ok && j < text.size() && is_digit(text[j]) && read_number(text, j, claim.b);
    if (ok) skip_spaces(text, j);
    ok = ok && j < text.size() && text[j] == '=';
    if (ok) {
      ++j;
      skip_spaces(text, j);
    }
    bool negative = false;
    if (ok && j < text.size() && text[j] == '-') {
      negative = true;
      ++j;
    }
    ok = ok && j < text.size() && is_digit(text[j]) && read_number(text, j, claim.c);
    if (!ok) {
      while (i < text.size() && is_digit(text[i])) ++i;  // skip this number
      continue;
    }
    if (negative) claim.c = -claim.c;
    int64_t value = 0;
    claim.holds = evaluate(claim.a, claim.op, claim.b, value) && value == claim.c;
    claim.end = j;
    claims.push_back(claim);
    i = j;
  }
  return claims;
}

}  // namespace anchor::rewards
