// CreditOptions: the `credit:` section of a run config (docs/design.md §5), one field per knob, with the
// defaults of the design. The credit code reads only this struct; trainer/config reads and
// validates it like every other section (validate_credit_options is called from there).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "trainer/common/enum_names.h"

namespace anchor::credit {

// Config choices are parsed once, at load, into these enums (names in EnumNames below). The
// token-weight registry (token_weights.h) keeps its strategies by name.
enum class CreditStrategy {
  none, random, entropy, forking_tokens, gtpo, local_chunk, global_anchor, coupled, thought_anchor
};
enum class LayerMode { default_spread, all, automatic, list };
// Heads are ranked by look-back distance pooled over the step's batch (every rank), over one
// micro-batch (so the map can be built inside the training forward), or per sequence.
enum class HeadRanking { batch, micro_batch, sequence };
enum class SinkHandling { keep, exclude };
enum class AdvantageSign { both, positive_only };
// What an attention edge t -> s counts as: its probability, or its probability times the norm of
// head h's value vector at s (what the edge moves into the output), renormalised per query row.
enum class AttentionWeighting { probability, value_norm };

// Which layers' attention is observed: "default" (5 layers evenly spaced between floor(L/3)
// and floor(2L/3)), "all", "auto" (every layer on the first credit step, then the layers that
// step measured to hold clearly local and clearly global non-sink heads; see layer_choice.h),
// or an explicit list of 0-based layer indices.
struct LayerSelection {
  // auto by measurement (credit-stats on SmolLM2-135M: WAAD -> FAI coupling +0.245 over random
  // with the chosen layers vs +0.118 with the default ones, sinks excluded, 10% per role).
  LayerMode mode = LayerMode::automatic;  // default | all | auto | list
  std::vector<int64_t> layers;   // mode == list
};

struct CreditOptions {
  CreditStrategy strategy = CreditStrategy::none;
  LayerSelection layers;
  int64_t auto_layer_count = 5;      // layers kept by layers: auto
  int64_t chunk_rows = 128;          // query rows per streamed attention chunk
  // 5.2 heads: the bottom head_quantile of observed heads by look-back distance are local,
  // the top head_quantile global; ranked over the step batch or within each sequence.
  double head_quantile = 0.3;
  HeadRanking head_ranking = HeadRanking::batch;
  // 5.7 attention sinks: token 0 and keys taking > sink_key_share of a response row's attention
  // in > sink_query_share of the rows. exclude: rows renormalised over non-sink keys, heads with
  // a mean sink share > sink_head_share leave the groups, sink tokens are never flagged.
  // exclude by measurement (credit-stats on SmolLM2-135M: coupling +0.006 with sinks kept,
  // +0.118 excluded on the default layers, 10% per role; docs/credit.md, "Attention sinks").
  SinkHandling sinks = SinkHandling::exclude;
  AttentionWeighting attention_weighting = AttentionWeighting::probability;
  double sink_key_share = 0.2;
  double sink_query_share = 0.5;
  double sink_head_share = 0.5;
  // 5.3 metrics
  int64_t window = 10;               // W of WAAD
  int64_t horizon_low = 10;          // H_lo of FAI
  int64_t horizon_high = 100;        // H_hi of FAI
  // q: preplan / anchor / random / entropy token share per response. 0.1 by measurement: at
  // the design's 0.4, 87% of random positions already have a preplan token 0-3 tokens earlier, so
  // no coupling can show; at 0.1 the random share is ~0.33, near the source paper's ~37%.
  double token_fraction = 0.1;
  int64_t dominance_lookback = 3;    // k: tokens before an anchor searched for its introduction
  std::string tau_waad = "median";   // "median" (per response) or a number
  std::string tau_delta = "median";  // "median" (per response) or a number
  // 5.8 comparators without attention
  double forking_fraction = 0.2;     // forking_tokens: share of the step's tokens (by entropy) that keep their gradient
  double gtpo_alpha_reward = 1.0;    // GTPO α1: weight of the sequence outcome (+1 / -1) in each token's reward
  double gtpo_alpha_entropy = 0.1;   // GTPO α2: weight of the entropy share
  // 5.5 weights
  double amplification = 1.5;        // γ_amp
  double coupled_alpha = 0.5;        // α: share of a dominated anchor's bonus moved to its intro token
  AdvantageSign sign = AdvantageSign::both;  // positive_only: γ only where the advantage is > 0
  // 5.6 thought anchors
  double sentence_fraction = 0.4;    // top share of sentences (by receiver score) amplified
  int64_t proximity = 4;             // P: vertical score uses sentences i >= j + P
  int64_t receiver_heads = 20;       // k heads with the highest mean kurtosis
  int64_t min_sentence_chars = 10;   // shorter chunks merge into the next sentence

  template <class V> void visit(V& v) {
    v("strategy", strategy, "token weights γ: none, random / entropy baselines, or an attention strategy");
    v("layers", layers, "observed layers: auto (measured on the first credit step), default, all, or a list");
    v("auto_layer_count", auto_layer_count, "layers kept by layers: auto");
    v("chunk_rows", chunk_rows, "query rows per streamed attention chunk (memory vs. speed)");
    v("head_quantile", head_quantile, "share of observed heads that are local (bottom) and global (top) by look-back");
    v("head_ranking", head_ranking,
      "rank heads over the whole step batch, each micro-batch (the map is then built in the training forward), "
      "or each sequence");
    v("sinks", sinks, "exclude: renormalise rows over non-sink keys, drop sink-dominated heads");
    v("sink_key_share", sink_key_share, "a key is a sink if it takes more than this share of a row...");
    v("sink_query_share", sink_query_share, "...in more than this share of the response rows");
    v("sink_head_share", sink_head_share, "heads with a larger mean sink share leave the head groups");
    v("attention_weighting", attention_weighting,
      "probability, or value_norm: each edge t -> s weighted by the norm of the head's value vector at s");
    v("window", window, "W of WAAD");
    v("horizon_low", horizon_low, "H_lo of FAI");
    v("horizon_high", horizon_high, "H_hi of FAI");
    v("token_fraction", token_fraction, "q: preplan / anchor / random / entropy token share per response");
    v("forking_fraction", forking_fraction, "forking_tokens: top share of the step's tokens by entropy that keep the gradient");
    v("gtpo_alpha_reward", gtpo_alpha_reward, "gtpo: α1, weight of the outcome (+1 correct / -1 wrong) in token rewards");
    v("gtpo_alpha_entropy", gtpo_alpha_entropy, "gtpo: α2, weight of the entropy share in token rewards");
    v("dominance_lookback", dominance_lookback, "k: tokens before an anchor searched for its introduction");
    v("tau_waad", tau_waad, "WAAD threshold of dominated anchors: median (per response) or a number");
    v("tau_delta", tau_delta, "Δ threshold of dominated anchors: median (per response) or a number");
    v("amplification", amplification, "γ_amp, the weight of selected tokens");
    v("coupled_alpha", coupled_alpha, "α: share of a dominated anchor's bonus moved to its introductory token");
    v("sign", sign, "positive_only: γ only on responses with a positive advantage");
    v("sentence_fraction", sentence_fraction, "thought_anchor: top share of sentences by receiver score");
    v("proximity", proximity, "P: vertical scores use sentences i >= j + P");
    v("receiver_heads", receiver_heads, "k heads with the highest mean kurtosis");
    v("min_sentence_chars", min_sentence_chars, "shorter chunks merge into the next sentence");
  }
};

// Every strategy, in documentation order.
const std::vector<CreditStrategy>& credit_strategies();
// Whether the strategy reads the policy's attention (and so needs the observed pass).
bool strategy_uses_attention(CreditStrategy strategy);
// Whether the strategy reads the policy's token entropies (entropy, forking_tokens, gtpo).
bool strategy_uses_entropy(CreditStrategy strategy);
// Whether the strategy replaces the sequence advantage by token advantages of its own (gtpo)
// instead of scaling it by γ.
bool strategy_sets_token_advantages(CreditStrategy strategy);
// Whether the strategy needs sentence segmentation (thought anchors).
bool strategy_uses_sentences(CreditStrategy strategy);

// Observed layer indices (sorted, unique) for a model with num_layers layers. "auto" observes
// every layer; the caller that chose (layer_choice.h) passes its choice on as a list.
std::vector<int64_t> observed_layers(const LayerSelection& selection, int64_t num_layers);

// A threshold that is "median" (returns true, value untouched) or a number (false, value set).
bool parse_threshold(const std::string& text, const std::string& key, double& value);

// Static checks; errors name the key as credit.<field>.
void validate_credit_options(const CreditOptions& options);

// Tokens (or sentences, heads) selected by a share q of n: ceil(q * n), at least 1 when n > 0.
int64_t top_count(double q, int64_t n);

}  // namespace anchor::credit

namespace anchor {

template <>
struct EnumNames<credit::CreditStrategy> {
  using E = credit::CreditStrategy;
  static constexpr std::pair<E, const char*> values[] = {
      {E::none, "none"},
      {E::random, "random"},
      {E::entropy, "entropy"},
      {E::forking_tokens, "forking_tokens"},
      {E::gtpo, "gtpo"},
      {E::local_chunk, "local_chunk"},
      {E::global_anchor, "global_anchor"},
      {E::coupled, "coupled"},
      {E::thought_anchor, "thought_anchor"}};
};
template <>
struct EnumNames<credit::LayerMode> {  // "list" is written as the list itself
  using E = credit::LayerMode;
  static constexpr std::pair<E, const char*> values[] = {
      {E::default_spread, "default"}, {E::all, "all"}, {E::automatic, "auto"}, {E::list, "list"}};
};
template <>
struct EnumNames<credit::HeadRanking> {
  using E = credit::HeadRanking;
  static constexpr std::pair<E, const char*> values[] = {
      {E::batch, "batch"}, {E::micro_batch, "micro_batch"}, {E::sequence, "sequence"}};
};
template <>
struct EnumNames<credit::SinkHandling> {
  using E = credit::SinkHandling;
  static constexpr std::pair<E, const char*> values[] = {{E::keep, "keep"}, {E::exclude, "exclude"}};
};
template <>
struct EnumNames<credit::AttentionWeighting> {
  using E = credit::AttentionWeighting;
  static constexpr std::pair<E, const char*> values[] = {{E::probability, "probability"}, {E::value_norm, "value_norm"}};
};
template <>
struct EnumNames<credit::AdvantageSign> {
  using E = credit::AdvantageSign;
  static constexpr std::pair<E, const char*> values[] = {{E::both, "both"}, {E::positive_only, "positive_only"}};
};

}  // namespace anchor
