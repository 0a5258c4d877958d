// The credit part of one RL step that is not pure tensor math: sentence ids of sampled
// responses (through the tokenizer's byte spans) and the per-step credit metrics line.
#pragma once

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <vector>

#include "credit/credit_map.h"
#include "trainer/model/tokenizer.h"
#include "trainer/rl/metric_sums.h"

namespace anchor {

// [N, width] int64 sentence index of every response token (-1 at padding), docs/design.md §5.6 rules.
at::Tensor response_sentence_ids(const Tokenizer& tokenizer, const std::vector<const std::vector<int64_t>*>& responses,
                                 int64_t width, int64_t min_sentence_chars);

// Adds this rank's token counts per credit category, amplified tokens, and sums of WAAD / FAI /
// γ over response tokens to `sums` (names "credit/..."), to be reduced over ranks.
void add_credit_sums(MetricSums& sums, const credit::CreditMap* map, const at::Tensor& gamma, const at::Tensor& valid);

// The metrics line's "credit" object from reduced sums: shares of response tokens per category
// and amplified overall, mean WAAD / FAI, mean γ.
nlohmann::json credit_metrics(const MetricSums& sums);

}  // namespace anchor
