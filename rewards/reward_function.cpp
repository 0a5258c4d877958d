#include "rewards/reward_function.h"

#include <cmath>

#include "rewards/answer_extraction.h"
#include "rewards/arithmetic_claims.h"
#include "rewards/countdown.h"
#include "rewards/external_reward.h"
#include "rewards/reward_parameters.h"
#include "trainer/common/error.h"

namespace anchor::rewards {
namespace {

using nlohmann::json;

class MathAnswer : public RewardComponent {
 public:
  MathAnswer(const json& p, const std::string& key) {
    reject_unknown_parameters(p, key, {"answer_key"});
    answer_key_ = p.is_object() ? p.value("answer_key", "answer") : "answer";
  }
  std::string row_problem(const json& ex) const override {
    return ex.contains(answer_key_) ? ""
                                    : "the row has no '" + answer_key_ +
                                          "' field (set answer_key to the field holding the reference answer)";
  }
  double score(const RewardInput& in) const override {
    // A row without the reference cannot be judged: an error, not a silent 0.
    const std::string problem = row_problem(in.example);
    AR_CHECK(problem.empty(), "math_answer reward: ", problem);
    const json& ref = in.example.at(answer_key_);
    const std::string reference = ref.is_string() ? ref.get<std::string>() : ref.dump();
    const auto predicted = extract_answer(in.response);
    return predicted && answers_equivalent(*predicted, reference) ? 1.0 : 0.0;
  }
  bool measures_correctness() const override { return true; }

 private:
  std::string answer_key_;
};

class Countdown : public RewardComponent {
 public:
  Countdown(const json& p, const std::string& key) { reject_unknown_parameters(p, key, {}); }
  std::string row_problem(const json& ex) const override {
    bool ok = ex.contains("numbers") && ex.at("numbers").is_array() && !ex.at("numbers").empty() &&
              ex.contains("target") && ex.at("target").is_number_integer();
    if (ok)
      for (const auto& n : ex.at("numbers")) ok = ok && n.is_number_integer();
    return ok ? "" : "the row needs 'numbers' (a non-empty list of integers) and 'target' (an integer)";
  }
  double score(const RewardInput& in) const override {
    const json& ex = in.example;
    const std::string problem = row_problem(ex);
    AR_CHECK(problem.empty(), "countdown reward: ", problem);
    std::vector<int64_t> numbers;
    for (const auto& n : ex.at("numbers")) numbers.push_back(n.get<int64_t>());
    const std::string expression = extract_countdown_expression(in.response);
    return verify_countdown(expression, numbers, ex.at("target").get<int64_t>()).correct ? 1.0 : 0.0;
  }
  bool measures_correctness() const override { return true; }
};

class Format : public RewardComponent {
 public:
  Format(const json& p, const std::string& key) {
    reject_unknown_parameters(p, key, {"marker"});
    marker_ = p.is_object() ? p.value("marker", "Answer:") : "Answer:";
    AR_CHECK(!marker_.empty(), key, ".marker: must not be empty");
  }
  double score(const RewardInput& in) const override {
    return in.response.find(marker_) != std::string::npos ? 1.0 : 0.0;
  }

 private:
  std::string marker_;
};

class LengthPenalty : public RewardComponent {
 public:
  LengthPenalty(const json& p, const std::string& key) {
    reject_unknown_parameters(p, key, {"cache_length"});
    cache_length_ = p.is_object() ? p.value("cache_length", int64_t{16}) : 16;
    AR_CHECK(cache_length_ > 0, key, ".cache_length: must be positive, got ", cache_length_);
  }
  double score(const RewardInput& in) const override {
    const int64_t soft_limit = in.max_new_tokens - cache_length_;
    if (in.response_tokens <= soft_limit) return 0.0;
    const double over = static_cast<double>(in.response_tokens - soft_limit) / static_cast<double>(cache_length_);
    return -std::min(1.0, over);
  }

 private:
  int64_t cache_length_ = 16;
};

// 1 if every "a op b = c" claim in the response is true (or it makes none), else 0.
class ArithmeticClaims : public RewardComponent {
 public:
  ArithmeticClaims(const json& p, const std::string& key) { reject_unknown_parameters(p, key, {}); }
  bool measures_correctness() const override { return true; }
  double score(const RewardInput& in) const override {
    for (const ArithmeticClaim& c : find_arithmetic_claims(in.response))
      if (!c.holds) return 0.0;
    return 1.0;
  }
};

template <typename T>
RewardFactory factory() {
  return [](const json& params, const std::string& key) -> std::unique_ptr<RewardComponent> {
    return std::make_unique<T>(params, key);
  };
}

}  // namespace

const Registry<RewardFactory>& reward_components() {
  static const Registry<RewardFactory> registry = [] {
    Registry<RewardFactory> r("reward component");
    r.add("math_answer", factory<MathAnswer>());
    r.add("countdown", factory<Countdown>());
    r.add("format", factory<Format>());
    r.add("length", factory<LengthPenalty>());
    r.add("arithmetic_claims", factory<ArithmeticClaims>());
    r.add("external", make_external_reward);
    return r;
  }();
  return registry;
}

ComponentScores RewardComponent::score_batch(const std::vector<RewardInput>& inputs) const {
  ComponentScores out;
  out.values.reserve(inputs.size());
  for (const RewardInput& input : inputs) out.values.push_back(score(input));
  return out;
}

CompositeReward::CompositeReward(const std::vector<Entry>& entries) {
  AR_CHECK(!entries.empty(), "reward.components: at least one component is needed");
  for (size_t i = 0; i < entries.size(); ++i) {
    const std::string key = "reward.components[" + std::to_string(i) + "]";
    AR_CHECK(std::isfinite(entries[i].weight), key, ".weight: must be a finite number");
    components_.push_back(reward_components().get(entries[i].name)(entries[i].params, key));
    names_.push_back(entries[i].name);
    keys_.push_back(key);
    weights_.push_back(entries[i].weight);
    const std::string label = components_.back()->label().empty() ? entries[i].name : components_.back()->label();
    std::vector<std::string> added = {label};
    for (const std::string& sub : components_.back()->sub_score_names()) added.push_back(label + "/" + sub);
    for (const std::string& column : added) {
      for (const std::string& existing : columns_)
        AR_CHECK(existing != column, key, ": its scores would be logged as '", column,
                 "', like another component's; give one of them a label");
      columns_.push_back(column);
    }
  }
}

CompositeReward CompositeReward::from_names(const std::vector<std::string>& names) {
  std::vector<Entry> entries;
  for (const auto& name : names) entries.push_back({name, 1.0, nlohmann::json::object()});
  return CompositeReward(entries);
}

std::string CompositeReward::row_problem(const nlohmann::json& example) const {
  for (size_t i = 0; i < components_.size(); ++i)
    if (std::string p = components_[i]->row_problem(example); !p.empty()) return names_[i] + " reward: " + p;
  return "";
}

RewardBreakdown CompositeReward::score(const RewardInput& input) const { return score_batch({input}).front(); }

std::vector<RewardBreakdown> CompositeReward::score_batch(const std::vector<RewardInput>& inputs) const {
  std::vector<RewardBreakdown> out(inputs.size());
  if (inputs.empty()) return out;
  std::vector<bool> any_correctness(inputs.size(), false);
  for (RewardBreakdown& b : out) b.correct = true;
  size_t column = 0;
  for (size_t i = 0; i < components_.size(); ++i) {
    const ComponentScores scores = components_[i]->score_batch(inputs);
    const std::vector<std::string> subs = components_[i]->sub_score_names();
    AR_CHECK(scores.values.size() == inputs.size() && scores.sub_scores.size() == subs.size(), keys_[i],
             ": returned scores for ", scores.values.size(), " rows, expected ", inputs.size());
    for (size_t r = 0; r < inputs.size(); ++r) {
      RewardBreakdown& b = out[r];
      const double value = scores.values[r];
      b.components.push_back({columns_[column], weights_[i], value});
      for (size_t k = 0; k < subs.size(); ++k) b.components.push_back({columns_[column + 1 + k], 0.0, scores.sub_scores[k][r]});
      b.total += weights_[i] * value;
      if (components_[i]->measures_correctness()) {
        any_correctness[r] = true;
        b.correct = b.correct && value >= 1.0;
      }
      if (r < scores.notes.size() && !scores.notes[r].empty())
        b.note += (b.note.empty() ? "" : "; ") + scores.notes[r];
    }
    column += 1 + subs.size();
  }
  for (size_t r = 0; r < inputs.size(); ++r) out[r].correct = any_correctness[r] && out[r].correct;
  return out;
}

}  // namespace anchor::rewards
