#include "rewards/answer_extraction.h"

#include <cctype>
#include <cmath>
#include <cstdlib>

namespace anchor::rewards {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string_view strip_decorations(std::string_view s) {
  s = trim(s);
  while (!s.empty() && (s.back() == '.' || s.back() == ',')) s = trim(s.substr(0, s.size() - 1));
  if (s.size() >= 2 && s.front() == '$' && s.back() == '$') s = trim(s.substr(1, s.size() - 2));
  return s;
}

bool is_number_char(char c) { return std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == ','; }

}  // namespace

std::optional<std::string> extract_answer(std::string_view response) {
  const size_t hashes = response.rfind("####");
  if (hashes != std::string_view::npos) {
    std::string_view rest = response.substr(hashes + 4);
    rest = rest.substr(0, rest.find('\n'));
    rest = strip_decorations(rest);
    if (!rest.empty()) return std::string(rest);
  }
  const size_t boxed = response.rfind("\\boxed{");
  if (boxed != std::string_view::npos) {
    size_t depth = 1, i = boxed + 7;
    for (; i < response.size() && depth > 0; ++i) {
      if (response[i] == '{') ++depth;
      else if (response[i] == '}') --depth;
    }
    if (depth == 0) return std::string(strip_decorations(response.substr(boxed + 7, i - 1 - (boxed + 7))));
  }
  // Last number: scan backwards for a digit, then extend over the number's characters.
  size_t end = response.size();
  while (end > 0 && !std::isdigit(static_cast<unsigned char>(response[end - 1]))) --end;
  if (end == 0) return std::nullopt;
  size_t begin = end;
  while (begin > 0 && is_number_char(response[begin - 1])) --begin;
  if (begin > 0 && response[begin - 1] == '-') --begin;
  std::string_view number = response.substr(begin, end - begin);
  while (!number.empty() && (number.front() == ',' || number.front() == '.')) number.remove_prefix(1);
  return std::string(number);
}

std::optional<double> parse_number(std::string_view text) {
  std::string_view s = strip_decorations(text);
  if (!s.empty() && s.front() == '$') s = trim(s.substr(1));
  bool percent = false;
  if (!s.empty() && s.back() == '%') {
    percent = true;
    s = trim(s.substr(0, s.size() - 1));
  }
  if (s.empty() || s.size() > 64) return std::nullopt;
  std::string cleaned;
  for (char c : s)
    if (c != ',') cleaned += c;
  const size_t slash = cleaned.find('/');
  if (slash != std::string::npos) {
    auto num = parse_number(cleaned.substr(0, slash));
    auto den = parse_number(cleaned.substr(slash + 1));
    if (!num || !den || *den == 0.0) return std::nullopt;
    return *num / *den;
  }
  char* end = nullptr;
  const double value = std::strtod(cleaned.c_str(), &end);
  if (end != cleaned.c_str() + cleaned.size() || !std::isfinite(value)) return std::nullopt;
  // strtod accepts "inf", "nan", hex: only plain decimal notation counts as a number here.
  for (char c : cleaned)
    if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E'))
      return std::nullopt;
  return percent ? value / 100.0 : value;
}

bool answers_equivalent(std::string_view predicted, std::string_view reference) {
  const auto a = parse_number(predicted), b = parse_number(reference);
  if (a && b) return std::fabs(*a - *b) <= 1e-6 * std::max(1.0, std::fabs(*b));
  return strip_decorations(predicted) == strip_decorations(reference) && !strip_decorations(reference).empty();
}

}  // namespace anchor::rewards
