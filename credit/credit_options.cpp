#include "credit/credit_options.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <set>

#include "trainer/common/error.h"

namespace anchor::credit {

const std::vector<CreditStrategy>& credit_strategies() {
  static const std::vector<CreditStrategy> all = [] {
    std::vector<CreditStrategy> v;
    for (const auto& [value, name] : EnumNames<CreditStrategy>::values) v.push_back(value);
    return v;
  }();
  return all;
}

bool strategy_uses_attention(CreditStrategy s) {
  return s == CreditStrategy::local_chunk || s == CreditStrategy::global_anchor || s == CreditStrategy::coupled ||
         s == CreditStrategy::thought_anchor;
}

bool strategy_uses_entropy(CreditStrategy s) {
  return s == CreditStrategy::entropy || s == CreditStrategy::forking_tokens || s == CreditStrategy::gtpo;
}

bool strategy_sets_token_advantages(CreditStrategy s) { return s == CreditStrategy::gtpo; }

bool strategy_uses_sentences(CreditStrategy s) { return s == CreditStrategy::thought_anchor; }

std::vector<int64_t> observed_layers(const LayerSelection& selection, int64_t num_layers) {
  std::set<int64_t> out;
  if (selection.mode == LayerMode::all || selection.mode == LayerMode::automatic) {
    for (int64_t l = 0; l < num_layers; ++l) out.insert(l);
  } else if (selection.mode == LayerMode::list) {
    for (int64_t l : selection.layers) {
      AR_CHECK(l >= 0 && l < num_layers, "credit.layers: layer ", l, " does not exist (the model has ", num_layers,
               " layers, 0-based)");
      out.insert(l);
    }
  } else {
    // Five layers evenly spaced over the middle third (docs/design.md §5.1); duplicates collapse on
    // models with fewer than five middle layers.
    const int64_t lo = num_layers / 3, hi = (2 * num_layers) / 3;
    for (int i = 0; i < 5; ++i)
      out.insert(lo + static_cast<int64_t>(std::lround(static_cast<double>(i) * static_cast<double>(hi - lo) / 4.0)));
  }
  return {out.begin(), out.end()};
}

bool parse_threshold(const std::string& text, const std::string& key, double& value) {
  if (text == "median") return true;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  AR_CHECK(!text.empty() && end == text.c_str() + text.size() && std::isfinite(v) && v >= 0, key,
           ": expected 'median' or a number >= 0, got '", text, "'");
  value = v;
  return false;
}

void validate_credit_options(const CreditOptions& c) {
  AR_CHECK(c.layers.mode != LayerMode::list || !c.layers.layers.empty(),
           "credit.layers: expected default, all, auto or a non-empty list of layer indices");
  for (int64_t l : c.layers.layers) AR_CHECK(l >= 0, "credit.layers: layer indices are >= 0, got ", l);
  AR_CHECK(c.auto_layer_count >= 1, "credit.auto_layer_count: must be >= 1, got ", c.auto_layer_count);
  AR_CHECK(c.chunk_rows >= 1, "credit.chunk_rows: must be >= 1, got ", c.chunk_rows);
  AR_CHECK(c.head_quantile > 0 && c.head_quantile <= 0.5, "credit.head_quantile: must be in (0, 0.5], got ",
           c.head_quantile);
  AR_CHECK(c.sink_key_share > 0 && c.sink_key_share < 1, "credit.sink_key_share: must be in (0, 1), got ",
           c.sink_key_share);
  AR_CHECK(c.sink_query_share >= 0 && c.sink_query_share < 1, "credit.sink_query_share: must be in [0, 1), got ",
           c.sink_query_share);
  AR_CHECK(c.sink_head_share > 0 && c.sink_head_share <= 1, "credit.sink_head_share: must be in (0, 1], got ",
           c.sink_head_share);
  AR_CHECK(c.window >= 1, "credit.window: must be >= 1, got ", c.window);
  AR_CHECK(c.horizon_low >= 1, "credit.horizon_low: must be >= 1, got ", c.horizon_low);
  AR_CHECK(c.horizon_high >= c.horizon_low, "credit.horizon_high: must be >= credit.horizon_low (", c.horizon_low,
           "), got ", c.horizon_high);
  AR_CHECK(c.token_fraction > 0 && c.token_fraction <= 1, "credit.token_fraction: must be in (0, 1], got ",
           c.token_fraction);
  AR_CHECK(c.forking_fraction > 0 && c.forking_fraction <= 1, "credit.forking_fraction: must be in (0, 1], got ",
           c.forking_fraction);
  AR_CHECK(c.gtpo_alpha_reward >= 0 && std::isfinite(c.gtpo_alpha_reward),
           "credit.gtpo_alpha_reward: must be a finite number >= 0, got ", c.gtpo_alpha_reward);
  AR_CHECK(c.gtpo_alpha_entropy >= 0 && std::isfinite(c.gtpo_alpha_entropy),
           "credit.gtpo_alpha_entropy: must be a finite number >= 0, got ", c.gtpo_alpha_entropy);
  AR_CHECK(c.strategy != CreditStrategy::gtpo || c.sign == AdvantageSign::both,
           "credit.sign: positive_only scales γ, but credit.strategy gtpo sets token advantages of its own; "
           "use sign: both");
  AR_CHECK(c.dominance_lookback >= 1, "credit.dominance_lookback: must be >= 1, got ", c.dominance_lookback);
  double unused = 0;
  parse_threshold(c.tau_waad, "credit.tau_waad", unused);
  parse_threshold(c.tau_delta, "credit.tau_delta", unused);
  AR_CHECK(c.amplification >= 1, "credit.amplification: must be >= 1, got ", c.amplification);
  AR_CHECK(c.coupled_alpha >= 0 && c.coupled_alpha <= 1, "credit.coupled_alpha: must be in [0, 1], got ",
           c.coupled_alpha);
  AR_CHECK(c.sentence_fraction > 0 && c.sentence_fraction <= 1, "credit.sentence_fraction: must be in (0, 1], got ",
           c.sentence_fraction);
  AR_CHECK(c.proximity >= 1, "credit.proximity: must be >= 1, got ", c.proximity);
  AR_CHECK(c.receiver_heads >= 1, "credit.receiver_heads: must be >= 1, got ", c.receiver_heads);
  AR_CHECK(c.min_sentence_chars >= 0, "credit.min_sentence_chars: must be >= 0, got ", c.min_sentence_chars);
}

int64_t top_count(double q, int64_t n) {
  if (n <= 0) return 0;
  const auto k = static_cast<int64_t>(std::ceil(q * static_cast<double>(n) - 1e-9));
  return std::clamp<int64_t>(k, 1, n);
}

}  // namespace anchor::credit
