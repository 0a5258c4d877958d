// The reward parsers on model output: math answer extraction and number parsing, answer
// equivalence, countdown expression extraction and evaluation. They run on every sampled
// response, so they must never throw or crash, whatever the text.
#include <string>
#include <vector>

#include "rewards/answer_extraction.h"
#include "rewards/countdown.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const auto answer = anchor::rewards::extract_answer(text);
  anchor::rewards::parse_number(text);
  const size_t half = text.size() / 2;
  anchor::rewards::answers_equivalent(text.substr(0, half), text.substr(half));
  if (answer) anchor::rewards::answers_equivalent(*answer, "42");
  const std::string expression = anchor::rewards::extract_countdown_expression(text);
  anchor::rewards::verify_countdown(expression, {3, 7, 25}, 46);
  anchor::rewards::verify_countdown(text, {1, 2, 3, 4}, 24);
  return 0;
}
