// The external reward protocol (version 1; rewards/README.md): one JSON request line per batch
// of completions, one JSON answer line back. The same body travels over a subprocess's
// stdin/stdout and as an HTTP POST. Building the request and checking the answer are pure
// functions here, so the answer parser — which reads whatever a user's program writes — is
// fuzzed on its own (tests/fuzz/fuzz_reward_answer.cpp).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "rewards/reward_function.h"

namespace anchor::rewards {

constexpr int kRewardProtocolVersion = 1;

// {"protocol": 1, "rows": [{"prompt", "completion", "completion_tokens", "max_new_tokens",
// "finish_reason": "stop" | "length", "example": {the dataset row}}, ...]} on one line.
// Bytes that are not UTF-8 (a completion cut inside a character) arrive as U+FFFD.
std::string reward_request_line(const std::vector<RewardInput>& rows);

struct RewardAnswer {
  std::vector<double> scores;                   // one per row; NaN / Inf kept (the trainer's guard sees them)
  std::vector<std::vector<double>> sub_scores;  // [declared name][row]
  std::vector<std::string> notes;               // one per row ("" = none)
};

// Checks one answer line against a request of `rows` rows: {"scores": [...], "sub_scores":
// {name: [...]}, "notes": [...]}, or {"error": "..."} (the program's own failure, reported
// as is). A score is a number or one of the strings "NaN", "Infinity", "-Infinity" (JSON has
// no non-finite numbers). Every sub-score named in `sub_score_names` must be present, and no
// other. Errors start with `origin` and name the field and row.
RewardAnswer parse_reward_answer(std::string_view line, size_t rows, const std::vector<std::string>& sub_score_names,
                                 const std::string& origin);

}  // namespace anchor::rewards
