// Arithmetic claims in text: "a op b = c" with non-negative integers a, b, an optionally
// negative integer c and op one of + - * x × / (spaces optional), e.g. "12 + 7 = 19". The
// scorer of conditional training's evidence corpus (a sentence with a wrong claim is bad) and
// a reward component (arithmetic_claims). Torch-free.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace anchor::rewards {

struct ArithmeticClaim {
  int64_t a = 0, b = 0, c = 0;
  char op = '+';   // + - * /  (x and × are read as *)
  bool holds = false;  // a op b == c (division: exact, b != 0)
  size_t begin = 0, end = 0;  // byte range in the text
};

// Every claim in the text, in order. Numbers of more than 18 digits, or that are part of a
// longer token (a decimal "1.5", a word "x2"), are not claims.
std::vector<ArithmeticClaim> find_arithmetic_claims(const std::string& text);

}  // namespace anchor::rewards
