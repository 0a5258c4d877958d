// Credit analysis of one (prompt, response) for `anchor-rl credit`: the full credit map
// (every token's WAAD / FAI / Δ / roles / γ under each strategy, every sentence's receiver
// score) and the analysis-only thought-anchor methods of docs/design.md §5.6 that are too costly per
// training step — attention suppression and resampling importance. Output is JSON
// (credit.json); trainer/analysis/credit_html.h renders it.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "credit/credit_options.h"
#include "rewards/reward_function.h"
#include "trainer/model/pretrained.h"
#include "trainer/rollout/sampler.h"

namespace anchor {

struct CreditAnalysisInput {
  std::string prompt_text;             // as the model saw it (after the template)
  std::vector<int64_t> prompt_ids;     // BOS included
  std::vector<int64_t> response_ids;   // the analysed response
  nlohmann::json example = nlohmann::json::object();  // the dataset row (for rewards)
};

struct CreditAnalysisOptions {
  credit::CreditOptions credit;
  uint64_t seed = 0;                     // random baseline, resampling
  bool suppression = false;              // attention suppression per sentence
  int64_t resample = 0;                  // K completions per sentence prefix (0 = off)
  SamplingParams sampling;               // for resampling
  const rewards::CompositeReward* reward = nullptr;  // judges resampled answers
};

nlohmann::json analyze_credit(const Pretrained& policy, const CreditAnalysisInput& input,
                              const CreditAnalysisOptions& options);

}  // namespace anchor
