// The `external` reward component: scores come from the user's own program, in any language,
// over the line protocol of reward_protocol.h — a subprocess kept alive for the whole run
// (`command`), or an HTTP server (`url`). One exchange per batch of completions; every wait
// has a deadline; a program that exits or stalls is restarted (up to `retries` times, each
// logged), then the run stops with an error naming the cause. rewards/README.md documents it.
//
//   reward:
//     components:
//       - {name: external, command: "python3 rewards/examples/countdown_reward.py", weight: 1}
//       - {name: external, url: "http://127.0.0.1:8000/score", label: judge, timeout_seconds: 30}
//
// Parameters: command | url (exactly one), timeout_seconds (60; for one batch), retries (3),
// sub_scores (names the program reports besides its score, logged as LABEL/NAME), correctness
// (false; true: a row scoring >= 1 counts as correct for the accuracy metric), label
// ("external"; the name its scores are logged under).
#pragma once

#include <memory>
#include <string>

#include "rewards/reward_function.h"

namespace anchor::rewards {

std::unique_ptr<RewardComponent> make_external_reward(const nlohmann::json& params, const std::string& key);

// What run.json records about the config's external components, so that a resumed or compared
// run can see that the program changed: each one's key, command or url, and the XXH3-64 of
// every file its command names (the script, data it reads). Computed from the config alone.
nlohmann::json external_reward_records(const std::vector<CompositeReward::Entry>& entries);
// What differs between two such records (one message each, naming the key and the file).
std::vector<std::string> external_reward_changes(const nlohmann::json& before, const nlohmann::json& now);

}  // namespace anchor::rewards
