// Reward functions: each scores one completion; a weighted composite (from the config's
// reward.components) sums them and reports every component for logging.
// Every component gives a finite score for any text (garbage, huge, deeply nested).
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "trainer/common/registry.h"

namespace anchor::rewards {

struct RewardInput {
  const std::string& prompt;
  const std::string& response;
  const nlohmann::json& example;  // the dataset row: answer and any extra fields
  int64_t response_tokens = 0;
  int64_t max_new_tokens = 0;     // the generation budget
  bool truncated = false;         // stopped by max_new_tokens, not by EOS / stop string
};

// What a component says about a batch of rows.
struct ComponentScores {
  std::vector<double> values;                   // one per row
  std::vector<std::vector<double>> sub_scores;  // [sub_score_names()[k]][row]
  std::vector<std::string> notes;               // one per row ("" = none), or empty
};

class RewardComponent {
 public:
  virtual ~RewardComponent() = default;
  virtual double score(const RewardInput& input) const = 0;
  // Scores a batch: built-ins row by row; an external program gets the batch in one exchange.
  virtual ComponentScores score_batch(const std::vector<RewardInput>& inputs) const;
  // Named values it reports besides its score (logged as LABEL/NAME, not summed into the reward).
  virtual std::vector<std::string> sub_score_names() const { return {}; }
  // The name its scores are logged under ("" = its registered name).
  virtual std::string label() const { return ""; }
  // True for components that judge correctness (used for the accuracy metric).
  virtual bool measures_correctness() const { return false; }
  // Why this component cannot judge completions of the dataset row `example` ("" = it can);
  // datasets are checked with it when they are loaded, not at the first rollout.
  virtual std::string row_problem(const nlohmann::json& example) const { return ""; }
};

// Builds a component from its config parameters; `key` (e.g. "reward.components[1]") is
// named in errors; unknown parameters are errors.
using RewardFactory = std::function<std::unique_ptr<RewardComponent>(const nlohmann::json& params, const std::string& key)>;

// Built-in components:
//   math_answer  1 if the extracted answer equals example[answer_key] numerically, else 0.
//                params: answer_key (default "answer").
//   countdown    1 if the extracted expression is a correct countdown solution for
//                example["numbers"] and example["target"], else 0.
//   format       1 if the response contains the answer marker (params: marker, default
//                "Answer:"), else 0.
//   arithmetic_claims  1 if every "a op b = c" claim in the response holds (or there is none),
//                else 0 (rewards/arithmetic_claims.h; conditional SFT's sentence scorer).
//   length       DAPO's soft over-length penalty: 0 up to max_new_tokens - cache_length,
//                then falling linearly to -1 at max_new_tokens (params: cache_length, default 16).
//   external     the user's own program over a subprocess or HTTP (rewards/external_reward.h).
const Registry<RewardFactory>& reward_components();

struct ComponentScore {
  std::string name;
  double weight = 1.0;
  double value = 0.0;
};

struct RewardBreakdown {
  double total = 0.0;
  bool correct = false;  // every correctness component scored 1
  std::vector<ComponentScore> components;  // one per column (columns()): each component, then its sub-scores (weight 0)
  std::string note;      // an external program's note on this row ("" = none)
};

class CompositeReward {
 public:
  struct Entry {
    std::string name;
    double weight = 1.0;
    nlohmann::json params = nlohmann::json::object();
  };
  explicit CompositeReward(const std::vector<Entry>& entries);
  // Components named on a command line: weight 1, default parameters.
  static CompositeReward from_names(const std::vector<std::string>& names);
  RewardBreakdown score(const RewardInput& input) const;
  // One breakdown per input; each component sees the whole batch at once.
  std::vector<RewardBreakdown> score_batch(const std::vector<RewardInput>& inputs) const;
  // "" if every component can judge the row, else "<component> reward: <why>".
  std::string row_problem(const nlohmann::json& example) const;
  // The logged columns, in RewardBreakdown::components order: each component's label, then
  // LABEL/NAME for each of its sub-scores. Unique (a clash is a config error).
  const std::vector<std::string>& columns() const { return columns_; }

 private:
  std::vector<std::string> names_, keys_, columns_;
  std::vector<double> weights_;
  std::vector<std::unique_ptr<RewardComponent>> components_;
};

}  // namespace anchor::rewards
