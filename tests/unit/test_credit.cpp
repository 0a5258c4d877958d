// Credit maps (docs/design.md §5): every metric on hand-written attention with hand-computed values;
// the streaming reducer against a naive full-matrix reference on a random model (padded batch
// vs each sequence alone); edge cases; γ per strategy; thought anchors; sentence rules.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <map>

#include "credit/attention_statistics.h"
#include "credit/coupling.h"
#include "credit/credit_map.h"
#include "credit/gtpo_advantages.h"
#include "credit/layer_choice.h"
#include "credit/sentence_segmentation.h"
#include "credit/thought_anchors.h"
#include "credit/token_metrics.h"
#include "credit/token_weights.h"
#include "test_util.h"
#include "trainer/config/train_config.h"
#include "trainer/model/llama_model.h"
#include "trainer/model/tokenizer.h"
#include "trainer/rl/policy_pass.h"
#include "trainer/rollout/step_batch.h"

namespace anchor {
namespace {

using credit::AttentionStatistics;
using credit::CreditOptions;

std::vector<double> values(const at::Tensor& t) {
  at::Tensor c = t.to(torch::kDouble).contiguous().flatten();
  return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}

void expect_near(const at::Tensor& actual, const std::vector<double>& expected, double tol = 1e-9) {
  const auto a = values(actual);
  ASSERT_EQ(a.size(), expected.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], expected[i], tol) << "element " << i;
}

std::vector<bool> flags(const at::Tensor& t) {
  const auto v = values(t.to(torch::kDouble));
  return {v.begin(), v.end()};
}

// One sequence: column 0 = prompt, columns 1..4 = response tokens r0..r3. Head 0 is local
// (look-back mean 0.75), head 1 global (1.0875). Rows sum to 1; the upper triangle is 0.
at::Tensor hand_attention() {
  const float h0[5][5] = {{1, 0, 0, 0, 0},
                          {0.5f, 0.5f, 0, 0, 0},
                          {0, 0.5f, 0.5f, 0, 0},
                          {0, 0, 0, 1, 0},
                          {0.5f, 0, 0, 0, 0.5f}};
  const float h1[5][5] = {{1, 0, 0, 0, 0},
                          {0, 1, 0, 0, 0},
                          {0.2f, 0.8f, 0, 0, 0},
                          {0, 0.6f, 0.2f, 0.2f, 0},
                          {0, 0.5f, 0, 0.25f, 0.25f}};
  at::Tensor a = torch::zeros({1, 2, 5, 5}, torch::kFloat);
  for (int t = 0; t < 5; ++t)
    for (int s = 0; s < 5; ++s) {
      a[0][0][t][s] = h0[t][s];
      a[0][1][t][s] = h1[t][s];
    }
  return a;
}

CreditOptions hand_options() {
  CreditOptions o;
  o.sinks = credit::SinkHandling::keep;  // column 0 is token 0; the sink tests below exclude it on purpose
  o.window = 2;
  o.horizon_low = 1;
  o.horizon_high = 2;
  o.head_quantile = 0.5;
  o.token_fraction = 0.5;
  o.proximity = 1;
  o.receiver_heads = 1;
  o.sentence_fraction = 0.5;
  return o;
}

// The reducer settings of `o` (sinks kept or excluded as `o` says) with a small chunk size.
credit::ReducerOptions with_chunk_rows(credit::ReducerOptions r, int64_t rows) {
  r.chunk_rows = rows;
  return r;
}

// Streams the hand attention in two chunks of query rows (0-2, 3-4).
AttentionStatistics hand_statistics(const CreditOptions& o, bool sentences) {
  const at::Tensor sentence_ids = torch::tensor({0, 0, 1, 1}, torch::kLong).view({1, 4});
  credit::StreamingAttentionReducer reducer({7}, 2, /*response_begin=*/1, torch::tensor({4}, torch::kLong), 4,
                                            with_chunk_rows(credit::reducer_options(o), 3),
                                            sentences ? sentence_ids : at::Tensor());
  const at::Tensor a = hand_attention();
  EXPECT_TRUE(reducer.observes_layer(7));
  EXPECT_FALSE(reducer.observes_layer(6));
  reducer.on_chunk({6, 0, 0, a.slice(2, 0, 3)});  // another layer: ignored
  reducer.on_chunk({7, 0, 0, a.slice(2, 0, 3)});
  reducer.on_chunk({7, 3, 0, a.slice(2, 3, 5)});
  return reducer.finish();
}

TEST(CreditMetrics, HandWrittenAttentionGivesHandComputedValues) {
  const CreditOptions o = hand_options();
  const AttentionStatistics st = hand_statistics(o, false);
  // Look-back sums: head 0 rows 0.5 + 0.5 + 0 + 2.0; head 1 rows 0 + 1.2 + 1.4 + 1.75.
  expect_near(st.lookback_sum, {3.0, 4.35}, 1e-6);
  expect_near(credit::lookback_distance(st, credit::HeadRanking::sequence), {0.75, 1.0875}, 1e-6);
  const credit::HeadGroups g = credit::head_groups(credit::lookback_distance(st, credit::HeadRanking::batch), o.head_quantile);
  EXPECT_EQ(flags(g.local), (std::vector<bool>{true, false}));
  EXPECT_EQ(flags(g.global), (std::vector<bool>{false, true}));

  // WAAD (W = 2, local head 0): rows r0..r3 = 0.5, 0.5, 0, 0.5 * min(4, 2).
  const at::Tensor waad = credit::windowed_attention_distance(st, g.local);
  expect_near(waad, {0.5, 0.5, 0.0, 1.0}, 1e-6);
  // FAI (H_lo 1, H_hi 2, global head 1): r0 <- rows r1, r2 (0.8, 0.6); r1 <- r2, r3 (0.2, 0);
  // r2 <- r3 (0.25); r3 has no rows inside the response -> 0.
  expect_near(credit::fai_row_counts(st.response_lengths, 4, 1, 2), {2, 2, 1, 0});
  const at::Tensor fai = credit::future_attention_influence(st, g.global, 1, 2);
  expect_near(fai, {0.7, 0.1, 0.25, 0.0}, 1e-6);
  // Δ: |0.5-0.5|, |0.5-0|, |0-1|, last token 0.
  const at::Tensor delta = credit::preplan_signal(waad, st.response_lengths);
  expect_near(delta, {0.0, 0.5, 1.0, 0.0}, 1e-6);

  const credit::CreditMap m = credit::build_credit_map(st, o);
  EXPECT_EQ(flags(m.preplan), (std::vector<bool>{false, true, true, false}));
  EXPECT_EQ(flags(m.anchor), (std::vector<bool>{true, false, true, false}));
  // Medians: WAAD 0.5, Δ 0.25. Anchor r2: WAAD 0 <= 0.5 and max(Δ r0, Δ r1) = 0.5 >= 0.25 ->
  // dominated, introduced by r1. Anchor r0 has no earlier response token.
  EXPECT_EQ(flags(m.dominated), (std::vector<bool>{false, false, true, false}));
  EXPECT_EQ(flags(m.intro), (std::vector<bool>{false, true, false, false}));

  credit::WeightInputs in;
  in.response_lengths = st.response_lengths;
  in.width = 4;
  in.map = &m;
  auto gamma = [&](const std::string& strategy) {
    CreditOptions so = o;
    EXPECT_TRUE(enum_from_name(strategy, so.strategy)) << strategy;
    return credit::token_weights(in, so);
  };
  expect_near(gamma("none"), {1, 1, 1, 1});
  expect_near(gamma("local_chunk"), {1, 1.5, 1.5, 1});
  expect_near(gamma("global_anchor"), {1.5, 1, 1.5, 1});
  // Free anchor r0: +0.5; dominated r2 keeps (1-α)·0.5; intro r1 gets α·0.5.
  expect_near(gamma("coupled"), {1.5, 1.25, 1.25, 1});
  CreditOptions fixed = o;
  fixed.tau_waad = "0.1";  // WAAD of r2 is 0 <= 0.1 still; τ_Δ 0.6 > 0.5 -> not dominated
  fixed.tau_delta = "0.6";
  EXPECT_EQ(flags(credit::build_credit_map(st, fixed).dominated), (std::vector<bool>{false, false, false, false}));
}

TEST(CreditMetrics, SentenceBlocksVerticalScoresAndThoughtAnchorWeights) {
  const CreditOptions o = hand_options();
  const AttentionStatistics st = hand_statistics(o, true);
  // Sentences: r0 r1 | r2 r3. Head 0 blocks: (0,0) 0.5 + 1.0, (1,0) 0, (1,1) 1 + 0.5.
  // Head 1: (0,0) 1 + 0.8, (1,0) 0.8 + 0.5, (1,1) 0.2 + 0.5.
  expect_near(st.block_sums, {1.5, 0, 0, 1.5, 1.8, 0, 1.3, 0.7}, 1e-6);
  const credit::VerticalScores v = credit::vertical_scores(st, /*proximity=*/1);
  // Sentence 0: block mean of (1, 0) = sum / (2 * 2); sentence 1 has no sentence >= 1 + P.
  expect_near(v.scores, {0.0, 0.0, 0.325, 0.0}, 1e-6);
  EXPECT_EQ(flags(v.defined), (std::vector<bool>{true, false}));
  const credit::CreditMap m = credit::build_credit_map(st, o, nullptr, torch::tensor({0, 0, 1, 1}).view({1, 4}));
  ASSERT_TRUE(m.sentence_scores.defined());
  EXPECT_NEAR(m.sentence_scores[0][0].item<double>(), v.scores[0][m.receiver_heads[0]][0].item<double>(), 1e-12);
  EXPECT_TRUE(std::isnan(m.sentence_scores[0][1].item<double>()));
  // Top ceil(0.5 * 2) = 1 sentence among the defined ones: sentence 0.
  EXPECT_EQ(flags(m.anchor_sentence_tokens), (std::vector<bool>{true, true, false, false}));
  credit::WeightInputs in;
  in.response_lengths = st.response_lengths;
  in.width = 4;
  in.map = &m;
  CreditOptions so = o;
  so.strategy = credit::CreditStrategy::thought_anchor;
  expect_near(credit::token_weights(in, so), {1.5, 1.5, 1, 1});
}

TEST(CreditMetrics, KurtosisAndRunningReceiverHeads) {
  credit::VerticalScores v;
  // Two heads, four sentences: head 0 peaked (1, 0, 0, 0), head 1 flat-ish (1, 2, 1, 2).
  v.scores = torch::tensor({1.0, 0.0, 0.0, 0.0, 1.0, 2.0, 1.0, 2.0}, torch::kDouble).view({1, 2, 4});
  v.defined = torch::ones({1, 4}, torch::kBool);
  const credit::HeadKurtosis k = credit::vertical_score_kurtosis(v);
  // Head 0: m2 = 0.1875, m4 = 0.08203125 -> 0.0820/0.0352 - 3 = -2/3. Head 1: two-point
  // symmetric distribution -> kurtosis 1 - 3 = -2.
  expect_near(k.kurtosis, {-2.0 / 3.0, -2.0}, 1e-12);
  EXPECT_EQ(flags(k.valid), (std::vector<bool>{true, true}));
  credit::ReceiverHeadEstimate e;
  e.update(k);
  EXPECT_EQ(e.top_heads(1), (std::vector<int64_t>{0}));
  // A second trace where only head 1 is measured and very peaked moves its running mean.
  credit::HeadKurtosis k2{torch::tensor({0.0, 10.0}, torch::kDouble).view({1, 2}),
                          torch::tensor({false, true}).view({1, 2})};
  e.update(k2);
  EXPECT_EQ(e.traces, (std::vector<int64_t>{1, 2}));
  EXPECT_NEAR(e.kurtosis_sum[1], 8.0, 1e-12);
  EXPECT_EQ(e.top_heads(2), (std::vector<int64_t>{1, 0}));  // mean 4 > -2/3
  // Fewer than 3 defined sentences: not a kurtosis.
  v.defined = torch::tensor({true, true, false, false}).view({1, 4});
  EXPECT_EQ(flags(credit::vertical_score_kurtosis(v).valid), (std::vector<bool>{false, false}));
}

TEST(CreditMetrics, EdgeCasesEmptyShortAndOneSentence) {
  CreditOptions o;  // W 10, H_lo 10: a 3-token response is shorter than both
  o.token_fraction = 0.4;
  // Two rows: an empty response and a 3-token one; response width 3, prompt width 2.
  const at::Tensor lengths = torch::tensor({0, 3}, torch::kLong);
  credit::ReducerOptions raw = with_chunk_rows(credit::reducer_options(o), 2);
  raw.exclude_sinks = false;  // the raw rows (sinks found, not renormalised away)
  credit::StreamingAttentionReducer reducer({0}, 1, 2, lengths, 3, raw,
                                            torch::tensor({-1, -1, -1, 0, 0, 0}, torch::kLong).view({2, 3}));
  at::Tensor a = torch::zeros({2, 1, 5, 5});
  for (int t = 0; t < 5; ++t) a.select(2, t).slice(2, 0, t + 1).fill_(1.0 / (t + 1));  // uniform causal
  reducer.on_chunk({0, 0, 0, a.slice(2, 0, 2)});
  reducer.on_chunk({0, 2, 0, a.slice(2, 2, 4)});
  reducer.on_chunk({0, 4, 0, a.slice(2, 4, 5)});
  const AttentionStatistics st = reducer.finish();
  o.strategy = credit::CreditStrategy::thought_anchor;
  const credit::CreditMap m = credit::build_credit_map(st, o, nullptr, torch::tensor({-1, -1, -1, 0, 0, 0}).view({2, 3}));
  EXPECT_EQ(values(m.waad.sum(1))[0], 0.0);            // empty response: nothing
  expect_near(m.fai, {0, 0, 0, 0, 0, 0});               // shorter than H_lo: FAI is 0 everywhere
  // Uniform causal rows t = 2, 3, 4 over t + 1 keys: WAAD = mean distance = t / 2.
  expect_near(m.waad.slice(0, 1, 2), {1.0, 1.5, 2.0}, 1e-6);
  EXPECT_EQ(m.preplan.sum().item<int64_t>(), 2);        // ceil(0.4 * 3) in row 1, none in row 0
  EXPECT_FALSE(m.preplan[0].any().item<bool>());
  // One sentence: no vertical score, so thought anchors amplify nothing.
  EXPECT_FALSE(m.vertical.defined.any().item<bool>());
  credit::WeightInputs in{lengths, 3, &m, {}, 0};
  expect_near(credit::token_weights(in, o), {1, 1, 1, 1, 1, 1});
  for (double x : values(m.waad)) EXPECT_TRUE(std::isfinite(x));
}

TEST(CreditWeights, BaselinesAndSignMode) {
  CreditOptions o;
  o.token_fraction = 0.4;
  const at::Tensor lengths = torch::tensor({5, 10, 0}, torch::kLong);
  credit::WeightInputs in{lengths, 10, nullptr, {}, 42};
  o.strategy = credit::CreditStrategy::random;
  const at::Tensor r1 = credit::token_weights(in, o);
  EXPECT_TRUE(torch::equal(r1, credit::token_weights(in, o)));  // seeded
  const at::Tensor amplified = r1.gt(1.0f);
  EXPECT_EQ(amplified[0].sum().item<int64_t>(), 2);  // ceil(0.4 * 5)
  EXPECT_EQ(amplified[1].sum().item<int64_t>(), 4);
  EXPECT_EQ(amplified[2].sum().item<int64_t>(), 0);
  EXPECT_FALSE(amplified[0].slice(0, 5, 10).any().item<bool>());  // never padding
  in.seed = 43;
  EXPECT_FALSE(torch::equal(r1, credit::token_weights(in, o)));

  o.strategy = credit::CreditStrategy::entropy;
  in.entropy = torch::arange(30, torch::kFloat).view({3, 10}).remainder(7.0f);
  const at::Tensor e = credit::token_weights(in, o);
  // Row 0 entropies 0 1 2 3 4 -> top 2 are positions 3, 4.
  expect_near(e[0].slice(0, 0, 5), {1, 1, 1, 1.5, 1.5});
  in.entropy = at::Tensor();
  EXPECT_NE(test::error_of([&] { credit::token_weights(in, o); }).find("entropies"), std::string::npos);
  o.strategy = credit::CreditStrategy::coupled;
  EXPECT_NE(test::error_of([&] { credit::token_weights(in, o); }).find("needs the attention credit map"),
            std::string::npos);

  const at::Tensor gamma = torch::full({2, 2}, 1.5f);
  const at::Tensor adv = torch::tensor({0.7f, -0.7f});
  expect_near(credit::apply_sign_mode(gamma, adv, credit::AdvantageSign::both), {1.5, 1.5, 1.5, 1.5});
  expect_near(credit::apply_sign_mode(gamma, adv, credit::AdvantageSign::positive_only), {1.5, 1.5, 1, 1});
}

// forking_tokens (Wang et al. 2025): γ = 1 on the top share of the batch's tokens by entropy, 0
// elsewhere; the threshold is over every rank's tokens.
TEST(CreditWeights, ForkingTokensKeepTheTopShareOfTheWholeBatch) {
  CreditOptions o;
  o.strategy = credit::CreditStrategy::forking_tokens;
  o.forking_fraction = 0.3;
  credit::WeightInputs in{torch::tensor({4, 3}, torch::kLong), 4, nullptr, {}, 0};
  in.entropy = torch::tensor({{0.1f, 0.9f, 0.5f, 0.3f}, {0.8f, 0.2f, 0.7f, 9.0f}});  // 9: padding, never counted
  // 7 tokens, k = ceil(0.3 x 7) = 3: 0.9, 0.8, 0.7. Padding keeps γ = 1 (the mask removes it).
  expect_near(credit::token_weights(in, o), {0, 1, 0, 0, 1, 0, 1, 1});
  // Another rank holds 4 more tokens: 11 in all, k = 4: 0.95, 0.9, 0.85, 0.8 -> threshold 0.8.
  const credit::BatchGather gather = [](const at::Tensor& mine) {
    return torch::cat({mine, torch::tensor({0.95f, 0.85f, 0.75f, 0.05f})});
  };
  in.batch_gather = &gather;
  expect_near(credit::token_weights(in, o), {0, 1, 0, 0, 1, 0, 0, 1});
  // Ties with the threshold are kept: k = ceil(0.3 x 4) = 2 but three tokens share the 2nd value.
  in.batch_gather = nullptr;
  in.response_lengths = torch::tensor({4, 0}, torch::kLong);
  in.entropy = torch::tensor({{0.5f, 0.5f, 0.9f, 0.5f}, {0.f, 0.f, 0.f, 0.f}});
  expect_near(credit::token_weights(in, o), {1, 1, 1, 1, 1, 1, 1, 1});
  in.entropy = torch::tensor({{0.5f, 0.4f, 0.9f, 0.3f}, {0.f, 0.f, 0.f, 0.f}});
  expect_near(credit::token_weights(in, o), {1, 0, 1, 0, 1, 1, 1, 1});
  in.entropy = at::Tensor();
  EXPECT_NE(test::error_of([&] { credit::token_weights(in, o); }).find("entropies"), std::string::npos);
}

// GTPO token advantages (arXiv 2508.04349), by hand: three groups of G = 3, α1 = 1, α2 = 0.1.
TEST(CreditWeights, GtpoTokenAdvantagesByHand) {
  const at::Tensor correct = torch::tensor({1, 1, 0, 1, 0, 0, 1, 1, 1}, torch::kBool);
  const at::Tensor lengths = torch::tensor({2, 1, 2, 1, 1, 1, 2, 2, 1}, torch::kLong);
  const at::Tensor entropy = torch::tensor({{3.f, 1.f}, {1.f, 7.f}, {2.f, .5f},     // group 0
                                            {2.f, 0.f}, {4.f, 0.f}, {1.f, 0.f},     // group 1
                                            {1.f, 2.f}, {3.f, 1.f}, {2.f, 0.f}});   // group 2: all correct
  const at::Tensor a = credit::gtpo_token_advantages(correct, entropy, lengths, credit::GtpoOptions{3, 1.0, 0.1});
  // Group 0. t=0: O+ = {0, 1}, d = 2, entropies 3 and 1 -> 1 + 0.1*2*3/4 = 1.15 and 1.05; O- = {2},
  // h = 1 -> -1 - 0.1 = -1.1. t=1: O+ = {0} -> 1.1; O- = {2} -> -1.1. Token rewards
  // [1.15, 1.1 | 1.05 | -1.1, -1.1]: mean 0.22, std 1.078239.
  expect_near(a[0], {0.862516, 0.816145}, 1e-5);
  expect_near(a[1], {0.769773, 0}, 1e-5);
  expect_near(a[2], {-1.224217, -1.224217}, 1e-5);
  // Group 1: O+ = {3} -> 1.1; O- = {4, 5} with entropies 4 and 1: inverse shares 0.2 and 0.8, h = 2
  // -> -1 - 0.1*2*0.2 = -1.04 and -1.16 (the confident mistake gets the larger share).
  expect_near(a[3], {1.412637, 0}, 1e-5);
  expect_near(a[4], {-0.648529, 0}, 1e-5);
  expect_near(a[5], {-0.764108, 0}, 1e-5);
  // Group 2 is all correct: no contrast, no signal.
  EXPECT_EQ(a.slice(0, 6, 9).abs().sum().item<double>(), 0.0);
  EXPECT_NE(test::error_of([&] { credit::gtpo_token_advantages(correct, entropy, lengths, credit::GtpoOptions{4}); })
                .find("groups of 4"),
            std::string::npos);
}

// ---- attention sinks (docs/design.md §5.7) on hand-written attention --------------------------------

// One sequence: prompt columns 0-1 (token 0 = column 0), response r0..r3 in columns 2-5.
// Head 0 puts 0.5 of every response row on token 0; head 1 puts 0.9 there (sink-dominated);
// head 2 ignores token 0 but gives response token r0 (column 2) more than 0.2 in all 4 rows
// (a secondary sink). Prompt rows are arbitrary valid rows.
at::Tensor sink_attention() {
  const float h[3][6][6] = {{{1, 0, 0, 0, 0, 0}, {.5f, .5f, 0, 0, 0, 0}, {.5f, 0, .5f, 0, 0, 0},
                             {.5f, 0, .25f, .25f, 0, 0}, {.5f, 0, 0, .25f, .25f, 0}, {.5f, 0, 0, 0, .25f, .25f}},
                            {{1, 0, 0, 0, 0, 0}, {.5f, .5f, 0, 0, 0, 0}, {.9f, 0, .1f, 0, 0, 0},
                             {.9f, 0, 0, .1f, 0, 0}, {.9f, 0, 0, 0, .1f, 0}, {.9f, 0, 0, 0, 0, .1f}},
                            {{1, 0, 0, 0, 0, 0}, {.5f, .5f, 0, 0, 0, 0}, {0, .5f, .5f, 0, 0, 0},
                             {0, .2f, .6f, .2f, 0, 0}, {0, .2f, .4f, .2f, .2f, 0}, {0, .1f, .4f, .1f, .2f, .2f}}};
  at::Tensor a = torch::zeros({1, 3, 6, 6}, torch::kFloat);
  for (int j = 0; j < 3; ++j)
    for (int t = 0; t < 6; ++t)
      for (int k = 0; k < 6; ++k) a[0][j][t][k] = h[j][t][k];
  return a;
}

AttentionStatistics sink_statistics(const CreditOptions& o) {
  credit::StreamingAttentionReducer reducer({4}, 3, /*response_begin=*/2, torch::tensor({4}, torch::kLong), 4,
                                            credit::reducer_options(o), {}, torch::tensor({2}, torch::kLong));
  EXPECT_TRUE(reducer.surveys_layer(4));
  const at::Tensor a = sink_attention();
  // Survey sweep, then the real one, each in two chunks of rows (0-2, 3-5) as the model streams them.
  for (bool survey : {true, false}) {
    reducer.on_chunk({4, 0, 0, a.slice(2, 0, 3).slice(3, 0, 3), survey});
    reducer.on_chunk({4, 3, 0, a.slice(2, 3, 6), survey});
  }
  return reducer.finish();
}

// A sink-dominated head: every response row puts all but 4e-7 of its attention on token 0. With
// sinks excluded, the rows left are renormalised like any other (they once fell under a 1e-6
// cutoff and counted as 0, which made such heads look local).
TEST(CreditSinks, RowsAlmostAllOnTheSinkAreStillRenormalised) {
  CreditOptions o = hand_options();
  o.sinks = credit::SinkHandling::exclude;
  const int64_t N = 5;  // token 0 (the prompt) and 4 response tokens r0..r3 at positions 1..4
  at::Tensor a = torch::zeros({1, 1, N, N}, torch::kFloat);
  const float rest = 4e-7f;
  a[0][0][0][0] = 1.0f;
  for (int64_t t = 1; t < N; ++t) {
    a[0][0][t][0] = 1.0f - rest;
    for (int64_t s = 1; s <= t; ++s) a[0][0][t][s] = rest / static_cast<float>(t);  // uniform over r0..t
  }
  credit::StreamingAttentionReducer reducer({0}, 1, /*response_begin=*/1, torch::tensor({4}, torch::kLong), 4,
                                            with_chunk_rows(credit::reducer_options(o), 2));
  for (bool survey : {true, false}) {
    reducer.on_chunk({0, 0, 0, a.slice(2, 0, 2).slice(3, 0, 2), survey});
    reducer.on_chunk({0, 2, 0, a.slice(2, 2, 5), survey});
  }
  const AttentionStatistics st = reducer.finish();
  // Renormalised, row t is uniform over positions 1..t: look-back (t - 1) / 2, summed 0 + 0.5 +
  // 1 + 1.5 = 3 over the four rows (it was 0); WAAD (W 2) = mean of min(t - s, 2): 0, 1/2,
  // (2 + 1 + 0) / 3, (2 + 2 + 1 + 0) / 4.
  expect_near(st.lookback_sum, {3.0}, 1e-4);
  expect_near(st.waad_heads.view({-1}), {0.0, 0.5, 1.0, 1.25}, 1e-4);
  expect_near(st.sink_mass_sum, {4 * (1.0 - 4e-7)}, 1e-5);
}

TEST(CreditSinks, HandWrittenSinkColumnsRenormalisedExactly) {
  CreditOptions o = hand_options();  // W 2, H_lo 1, H_hi 2, q_head 0.5, q 0.5
  o.sinks = credit::SinkHandling::exclude;
  const AttentionStatistics ex = sink_statistics(o);
  // Sinks: token 0 in every head; r0 in head 2 (> 0.2 in 4 of 4 rows). Head 0 gives r0 > 0.2 in
  // only 2 of 4 rows (not more than half): no sink.
  expect_near(ex.prompt_sink_heads, {3, 0});
  expect_near(ex.response_sink_heads, {1, 0, 0, 0});
  // Raw sink mass over the 4 response rows: 4 x 0.5, 4 x 0.9, 0.5 + 0.6 + 0.4 + 0.4.
  expect_near(ex.sink_mass_sum, {2.0, 3.6, 1.9}, 1e-6);
  expect_near(ex.first_token_mass_sum, {2.0, 3.6, 0.0}, 1e-6);
  expect_near(credit::head_sink_share(ex, credit::HeadRanking::batch), {0.5, 0.9, 0.475}, 1e-6);
  // Rows renormalised over non-sink keys. Head 0: r0 -> itself; r1..r3 -> 0.5 / 0.5 on the
  // previous token and itself: look-back 0 + 0.5 + 0.5 + 0.5. Head 1: every row on itself: 0.
  // Head 2: r0 -> column 1 (1.0, distance 1); r1 -> columns 1, 3 (0.5 each: 1.0); r2 ->
  // columns 1, 3, 4 (1/3 each: 4/3); r3 -> 1/6, 1/6, 1/3, 1/3 on columns 1, 3, 4, 5 (4/3).
  expect_near(ex.lookback_sum, {1.5, 0.0, 1.0 + 1.0 + 4.0 / 3 + 4.0 / 3}, 1e-6);
  const credit::CreditMap m = credit::build_credit_map(ex, o);
  // Head 1 (0.9 > sink_head_share 0.5) leaves the groups; of heads 0 and 2, ceil(0.5 x 2) = 1 each.
  EXPECT_EQ(flags(m.eligible_heads), (std::vector<bool>{true, false, true}));
  EXPECT_EQ(flags(m.heads.local), (std::vector<bool>{true, false, false}));
  EXPECT_EQ(flags(m.heads.global), (std::vector<bool>{false, false, true}));
  // WAAD (W 2) of head 0 renormalised: 0, 0.5, 0.5, 0.5. FAI (H_lo 1, H_hi 2) of head 2
  // renormalised: r0 is a sink column (0); r1 <- rows r2, r3 (1/3 + 1/6) / 2; r2 <- r3 (1/3).
  expect_near(m.waad, {0.0, 0.5, 0.5, 0.5}, 1e-6);
  expect_near(m.fai, {0.0, 0.25, 1.0 / 3, 0.0}, 1e-6);
  // Δ = 0.5, 0, 0, 0 peaks at r0, but r0 is a sink token: never preplan or anchor (the top
  // two of the other tokens, ties earlier first).
  EXPECT_EQ(flags(m.sink_tokens), (std::vector<bool>{true, false, false, false}));
  EXPECT_EQ(flags(m.preplan), (std::vector<bool>{false, true, true, false}));
  EXPECT_EQ(flags(m.anchor), (std::vector<bool>{false, true, true, false}));

  // keep: the same sinks are reported, the sums are the raw ones and every head competes.
  o.sinks = credit::SinkHandling::keep;
  const AttentionStatistics kept = sink_statistics(o);
  expect_near(kept.sink_mass_sum, {2.0, 3.6, 1.9}, 1e-6);
  // Raw look-back: head 0 (1 + 1.75 + 2.25 + 2.75), head 1 0.9 x (2 + 3 + 4 + 5), head 2 (0.5 + 1 + 1.6 + 2).
  expect_near(kept.lookback_sum, {7.75, 12.6, 5.1}, 1e-6);
  const credit::CreditMap mk = credit::build_credit_map(kept, o);
  EXPECT_EQ(flags(mk.heads.global), (std::vector<bool>{true, true, false}));  // the sink head ranks global
  EXPECT_TRUE(mk.preplan[0][0].item<bool>());                               // and r0 may be flagged
  // A stricter key share finds no secondary sink (r0 gets 0.4 - 0.6 in head 2): token 0 only.
  o.sink_key_share = 0.6;
  expect_near(sink_statistics(o).response_sink_heads, {0, 0, 0, 0});
}

TEST(CreditSinks, LayerProfilesAndAutoLayerChoice) {
  CreditOptions o = hand_options();  // W 2, H_lo 1
  o.sinks = credit::SinkHandling::exclude;
  const auto profiles = credit::layer_profiles(sink_statistics(o), o);
  ASSERT_EQ(profiles.size(), 1u);
  const credit::LayerProfile& p = profiles[0];
  EXPECT_EQ(p.layer, 4);
  EXPECT_NEAR(p.mean_lookback, (0.375 + 0.0 + 14.0 / 12) / 3, 1e-6);
  EXPECT_NEAR(p.first_token_share, (0.5 + 0.9 + 0.0) / 3, 1e-6);
  EXPECT_EQ(p.sink_heads, 1);    // head 1 (0.9 > 0.5)
  EXPECT_EQ(p.local_heads, 2);   // heads 0 and 2: d <= W = 2
  EXPECT_EQ(p.global_heads, 0);  // none with d >= 2 H_lo = 2
  // Layers with both kinds first, then by count, ties to the middle of a 9-layer model.
  auto profile = [](int64_t layer, int64_t local, int64_t global) {
    credit::LayerProfile q;
    q.layer = layer;
    q.local_heads = local;
    q.global_heads = global;
    return q;
  };
  const std::vector<credit::LayerProfile> ps = {profile(0, 0, 3), profile(1, 1, 1), profile(2, 2, 0),
                                                profile(3, 1, 2), profile(5, 0, 2), profile(8, 2, 0)};
  EXPECT_EQ(credit::choose_layers(ps, 9, 2), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(credit::choose_layers(ps, 9, 3), (std::vector<int64_t>{0, 1, 3}));
  EXPECT_EQ(credit::choose_layers(ps, 9, 5), (std::vector<int64_t>{0, 1, 2, 3, 5}));  // 2 (d 2) beats 8 (d 4)
}

TEST(CreditCoupling, HandComputedSharesLagsAndStandardError) {
  // Response 0 (8 tokens): preplan 1, 5; anchors 2, 7. Response 1 (4 tokens): preplan 0, anchor 3.
  at::Tensor pre = torch::zeros({2, 8}, torch::kBool), anc = torch::zeros({2, 8}, torch::kBool);
  pre[0][1] = pre[0][5] = pre[1][0] = true;
  anc[0][2] = anc[0][7] = anc[1][3] = true;
  const at::Tensor lengths = torch::tensor({8, 4}, torch::kLong);
  const credit::CouplingStatistic c = credit::anchor_after_preplan(pre, anc, lengths, 3);
  // Every anchor has a preplan token 0-3 before it. Random positions: 7 of 8 in response 0
  // (all but token 0), 4 of 4 in response 1 -> expected hits 2 x 7/8 + 1.
  EXPECT_EQ(c.events, 3);
  EXPECT_NEAR(c.share, 1.0, 1e-12);
  EXPECT_NEAR(c.random, (1.75 + 1.0) / 3, 1e-12);
  EXPECT_NEAR(c.excess, 0.25 / 3, 1e-12);
  // Cluster SE of (0.25, 0) over (2, 1) events: sqrt(2 (0.25 - 2/12)^2 x 2) / 3.
  EXPECT_NEAR(c.excess_se, std::sqrt(2.0 * 2.0 * std::pow(0.25 - 2.0 / 12, 2)) / 3, 1e-12);
  // Lags: anchor 2 <- preplan 1 (lag 1), anchor 7 <- preplan 5 (lag 2), anchor 3 <- 0 (lag 3);
  // anchor 2 also has preplan 5 three tokens after it (lag -3).
  ASSERT_EQ(c.lags, (std::vector<int64_t>{-3, -2, -1, 0, 1, 2, 3}));
  expect_near(torch::tensor(c.lag_share, torch::kDouble), {1.0 / 3, 0, 0, 0, 1.0 / 3, 1.0 / 3, 1.0 / 3}, 1e-12);
  // Lag 0: positions that are preplan tokens: 2 of 8 and 1 of 4 -> (2 x 2/8 + 1 x 1/4) / 3.
  EXPECT_NEAR(c.lag_random[3], (2 * 0.25 + 0.25) / 3, 1e-12);
  // The paper's wording: preplan 1 is followed by anchor 2, preplan 5 by none, preplan 0 (of
  // response 1) by none (anchor at 3). Random: anchor at t or t + 1 for 4 of 8 and 2 of 4.
  const credit::CouplingStatistic p = credit::preplan_then_anchor(pre, anc, lengths);
  EXPECT_EQ(p.events, 3);
  EXPECT_NEAR(p.share, 1.0 / 3, 1e-12);
  EXPECT_NEAR(p.random, (2 * 0.5 + 1 * 0.5) / 3, 1e-12);
}

// ---- streaming vs a naive full-matrix reference on a random model ---------------------------

LlamaModel random_model() {
  nlohmann::json j = {{"vocab_size", 40}, {"hidden_size", 64}, {"intermediate_size", 96},
                      {"num_hidden_layers", 4}, {"num_attention_heads", 8}, {"num_key_value_heads", 2},
                      {"tie_word_embeddings", true}, {"eos_token_id", 2}, {"bos_token_id", 1}};
  LlamaModel m(parse_llama_config(j, "random"), torch::TensorOptions().dtype(torch::kFloat), 11);
  m.for_each_parameter([](const std::string& name, at::Tensor& t) {
    if (name.find("norm") == std::string::npos) t.mul_(6.0);  // peaked attention
  });
  return m;
}

// Keeps every observed layer's full [H, N, N] attention of one unpadded sequence.
struct FullAttention : AttentionObserver {
  std::map<int64_t, at::Tensor> maps;
  bool observes_layer(int64_t) const override { return true; }
  int64_t chunk_rows() const override { return 1 << 20; }
  void on_chunk(const AttentionChunk& c) override { maps[c.layer] = c.probs[0].to(torch::kDouble).clone(); }
};

// WAAD and FAI of one sequence by loops over the group-mean maps loc / glob [N, N] (prompt P,
// response len, padded to width R).
std::pair<std::vector<double>, std::vector<double>> naive_waad_fai(const at::Tensor& loc, const at::Tensor& glob,
                                                                   int64_t P, int64_t len, int64_t R,
                                                                   const CreditOptions& o) {
  const int64_t N = P + len;
  std::vector<double> waad(static_cast<size_t>(R), 0.0), fai(static_cast<size_t>(R), 0.0);
  for (int64_t r = 0; r < len; ++r) {
    const int64_t t = P + r;
    for (int64_t k = 0; k <= t; ++k) waad[static_cast<size_t>(r)] += loc[t][k].item<double>() * std::min<int64_t>(t - k, o.window);
    double sum = 0;
    int64_t count = 0;
    for (int64_t u = t + o.horizon_low; u <= std::min(N - 1, t + o.horizon_high); ++u) {
      sum += glob[u][t].item<double>();
      ++count;
    }
    fai[static_cast<size_t>(r)] = count ? sum / static_cast<double>(count) : 0.0;
  }
  return {waad, fai};
}

struct NaiveSequence {
  int64_t prompt = 0, response = 0;
  std::vector<at::Tensor> maps;  // per observed layer [H, N, N] double
};

TEST(CreditStreaming, MatchesNaiveFullMatrixReferenceOnPaddedBatch) {
  const LlamaModel model = random_model();
  CreditOptions o;
  o.sinks = credit::SinkHandling::keep;  // raw rows here; SinksExcludedMatchNaiveRenormalisedReference renormalises
  o.layers.mode = credit::LayerMode::all;
  o.chunk_rows = 3;  // many chunks per layer
  o.window = 4;
  o.horizon_low = 2;
  o.horizon_high = 6;
  o.proximity = 1;
  o.min_sentence_chars = 0;
  const std::vector<int64_t> layers = credit::observed_layers(o.layers, 4);
  const int64_t H = 8, J = static_cast<int64_t>(layers.size()) * H;

  // Three sequences of different prompt / response lengths (one response shorter than W, one empty).
  torch::manual_seed(5);
  std::vector<std::vector<int64_t>> prompts = {{1, 5, 6, 7}, {1, 9}, {1, 4, 4, 8, 12, 3}};
  std::vector<std::vector<int64_t>> responses(3);
  const std::vector<int64_t> response_lengths = {17, 3, 0};
  for (size_t i = 0; i < 3; ++i)
    for (int64_t r = 0; r < response_lengths[i]; ++r) responses[i].push_back(3 + (r * 7 + static_cast<int64_t>(i)) % 37);
  // Sentences: chunks of 5 tokens.
  std::vector<const std::vector<int64_t>*> pp, rr;
  for (size_t i = 0; i < 3; ++i) {
    pp.push_back(&prompts[i]);
    rr.push_back(&responses[i]);
  }
  const StepBatch batch = pad_sequences(pp, rr, 0);
  const int64_t R = batch.response_ids.size(1);
  at::Tensor sentence_ids = torch::full({3, R}, -1, torch::kLong);
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t r = 0; r < response_lengths[static_cast<size_t>(i)]; ++r) sentence_ids[i][r] = r / 5;

  // Streaming: micro-batches of 2 rows, padded.
  const PolicyPass pass = policy_pass(model, batch, 1.0, 2, false, &o, sentence_ids);
  ASSERT_TRUE(pass.attention.has_value());
  const AttentionStatistics& st = *pass.attention;

  // Naive: each sequence alone, full matrices.
  std::vector<NaiveSequence> seqs;
  for (size_t i = 0; i < 3; ++i) {
    std::vector<int64_t> ids = prompts[i];
    ids.insert(ids.end(), responses[i].begin(), responses[i].end());
    FullAttention full;
    ForwardInputs in = padded_batch_inputs(torch::tensor(ids).view({1, -1}), torch::ones({1, static_cast<int64_t>(ids.size())}, torch::kBool));
    in.observer = &full;
    torch::NoGradGuard ng;
    model.forward(in);
    NaiveSequence s{static_cast<int64_t>(prompts[i].size()), response_lengths[i], {}};
    for (int64_t l : layers) s.maps.push_back(full.maps.at(l));
    seqs.push_back(s);
  }
  // d(l,h) pooled over the batch, by loops.
  std::vector<double> d(static_cast<size_t>(J), 0.0);
  double rows = 0;
  for (const auto& s : seqs) {
    for (int64_t t = s.prompt; t < s.prompt + s.response; ++t) {
      rows += 1;
      for (int64_t j = 0; j < J; ++j) {
        const at::Tensor A = s.maps[static_cast<size_t>(j / H)][j % H];
        for (int64_t k = 0; k <= t; ++k) d[static_cast<size_t>(j)] += A[t][k].item<double>() * static_cast<double>(t - k);
      }
    }
  }
  for (auto& x : d) x /= rows;
  const at::Tensor distance = credit::lookback_distance(st, credit::HeadRanking::batch);
  for (int64_t b = 0; b < 3; ++b) expect_near(distance[b], d, 1e-5);
  const credit::HeadGroups g = credit::head_groups(distance, o.head_quantile);
  const credit::CreditMap m = credit::build_credit_map(st, o, nullptr, sentence_ids);

  for (size_t i = 0; i < 3; ++i) {
    const NaiveSequence& s = seqs[i];
    const int64_t N = s.prompt + s.response;
    at::Tensor loc = torch::zeros({N, N}, torch::kDouble), glob = torch::zeros({N, N}, torch::kDouble);
    int64_t nl = 0, ng = 0;
    for (int64_t j = 0; j < J; ++j) {
      const at::Tensor A = s.maps[static_cast<size_t>(j / H)][j % H];
      if (g.local[static_cast<int64_t>(i)][j].item<bool>()) {
        loc += A;
        ++nl;
      }
      if (g.global[static_cast<int64_t>(i)][j].item<bool>()) {
        glob += A;
        ++ng;
      }
    }
    loc /= static_cast<double>(nl);
    glob /= static_cast<double>(ng);
    const auto [waad, fai] = naive_waad_fai(loc, glob, s.prompt, s.response, R, o);
    expect_near(m.waad[static_cast<int64_t>(i)], waad, 1e-5);
    expect_near(m.fai[static_cast<int64_t>(i)], fai, 1e-5);
    // Vertical scores per head from block means of the full maps (sentences of 5 tokens).
    const int64_t S = m.vertical.scores.size(2);
    const int64_t Si = (s.response + 4) / 5;
    for (int64_t j = 0; j < J; ++j) {
      const at::Tensor A = s.maps[static_cast<size_t>(j / H)][j % H];
      for (int64_t sj = 0; sj < S; ++sj) {
        double total = 0;
        int64_t n = 0;
        for (int64_t si = sj + o.proximity; si < Si; ++si) {
          const int64_t r0 = si * 5, r1 = std::min(s.response, r0 + 5), c0 = sj * 5, c1 = std::min(s.response, c0 + 5);
          total += A.slice(0, s.prompt + r0, s.prompt + r1).slice(1, s.prompt + c0, s.prompt + c1).mean().item<double>();
          ++n;
        }
        const double expected = n && sj < Si ? total / static_cast<double>(n) : 0.0;
        EXPECT_NEAR(m.vertical.scores[static_cast<int64_t>(i)][j][sj].item<double>(), expected, 1e-5)
            << "row " << i << " head " << j << " sentence " << sj;
      }
    }
  }
  // The sequence alone (no padding, its own micro-batch) gives the same per-head sums.
  const at::Tensor row0 = torch::tensor({0}, torch::kLong);
  const StepBatch alone = select_rows(batch, row0);
  const PolicyPass single = policy_pass(model, alone, 1.0, 1, false, &o, sentence_ids.index_select(0, row0).slice(1, 0, alone.response_ids.size(1)));
  EXPECT_TRUE(torch::allclose(single.attention->waad_heads, st.waad_heads[0].unsqueeze(0).slice(2, 0, alone.response_ids.size(1)), 1e-6, 1e-6));
  EXPECT_TRUE(torch::allclose(single.attention->fai_sums, st.fai_sums[0].unsqueeze(0).slice(2, 0, alone.response_ids.size(1)), 1e-6, 1e-6));
  // Logprobs are the same with and without observation.
  const PolicyPass plain = policy_pass(model, batch, 1.0, 2, false);
  EXPECT_TRUE(torch::allclose(plain.logprobs, pass.logprobs, 1e-5, 1e-6));
}

TEST(CreditStreaming, SinksExcludedMatchNaiveRenormalisedReference) {
  const LlamaModel model = random_model();
  CreditOptions o;
  o.layers.mode = credit::LayerMode::all;
  o.chunk_rows = 3;
  o.window = 4;
  o.horizon_low = 2;
  o.horizon_high = 6;
  o.sinks = credit::SinkHandling::exclude;
  o.sink_key_share = 0.25;  // low enough for the random model to have secondary sinks
  o.sink_query_share = 0.3;
  const std::vector<int64_t> layers = credit::observed_layers(o.layers, 4);
  const int64_t H = 8, J = static_cast<int64_t>(layers.size()) * H;
  std::vector<std::vector<int64_t>> prompts = {{1, 5, 6, 7}, {1, 9}, {1, 4, 4, 8, 12, 3}};
  const std::vector<int64_t> response_lengths = {17, 9, 0};
  std::vector<std::vector<int64_t>> responses(3);
  for (size_t i = 0; i < 3; ++i)
    for (int64_t r = 0; r < response_lengths[i]; ++r) responses[i].push_back(3 + (r * 5 + 2 * static_cast<int64_t>(i)) % 37);
  std::vector<const std::vector<int64_t>*> pp, rr;
  for (size_t i = 0; i < 3; ++i) {
    pp.push_back(&prompts[i]);
    rr.push_back(&responses[i]);
  }
  const StepBatch batch = pad_sequences(pp, rr, 0);
  const int64_t R = batch.response_ids.size(1);
  const PolicyPass pass = policy_pass(model, batch, 1.0, 2, false, &o);
  const AttentionStatistics& st = *pass.attention;
  const credit::CreditMap m = credit::build_credit_map(st, o);

  int64_t secondary = 0;
  std::vector<double> d(static_cast<size_t>(J), 0.0), share(static_cast<size_t>(J), 0.0);
  double rows = 0;
  std::vector<at::Tensor> renormalised;  // per sequence [J, N, N]
  for (size_t i = 0; i < 3; ++i) {
    std::vector<int64_t> ids = prompts[i];
    ids.insert(ids.end(), responses[i].begin(), responses[i].end());
    const int64_t P = static_cast<int64_t>(prompts[i].size()), len = response_lengths[i], N = P + len;
    FullAttention full;
    ForwardInputs in = padded_batch_inputs(torch::tensor(ids).view({1, -1}), torch::ones({1, N}, torch::kBool));
    in.observer = &full;
    {
      torch::NoGradGuard ng;
      model.forward(in);
    }
    at::Tensor maps = torch::zeros({J, N, N}, torch::kDouble);
    for (int64_t j = 0; j < J; ++j) {
      const at::Tensor A = full.maps.at(layers[static_cast<size_t>(j / H)])[j % H];
      // Sinks by loops: token 0, and keys above the key share in more than the query share of rows.
      std::vector<bool> sink(static_cast<size_t>(N), false);
      sink[0] = true;
      for (int64_t k = 1; k < N; ++k) {
        int64_t above = 0;
        for (int64_t t = P; t < N; ++t) above += A[t][k].item<double>() > o.sink_key_share;
        if (len > 0 && static_cast<double>(above) > o.sink_query_share * static_cast<double>(len)) {
          sink[static_cast<size_t>(k)] = true;
          ++secondary;
        }
      }
      for (int64_t t = P; t < N; ++t) {
        double kept = 0, sunk = 0;
        for (int64_t k = 0; k <= t; ++k) (sink[static_cast<size_t>(k)] ? sunk : kept) += A[t][k].item<double>();
        share[static_cast<size_t>(j)] += sunk;
        for (int64_t k = 0; k <= t; ++k)
          if (!sink[static_cast<size_t>(k)] && kept > 0) maps[j][t][k] = A[t][k].item<double>() / kept;
        for (int64_t k = 0; k <= t; ++k) d[static_cast<size_t>(j)] += maps[j][t][k].item<double>() * static_cast<double>(t - k);
      }
    }
    rows += static_cast<double>(len);
    renormalised.push_back(maps);
  }
  EXPECT_GT(secondary, 0) << "the test model should have secondary sinks";
  for (size_t j = 0; j < d.size(); ++j) {
    d[j] /= rows;
    share[j] /= rows;
  }
  for (int64_t b = 0; b < 3; ++b) {
    expect_near(m.head_distance[b], d, 1e-5);
    expect_near(m.head_sink_share[b], share, 1e-5);
  }
  for (size_t i = 0; i < 3; ++i) {
    const int64_t P = static_cast<int64_t>(prompts[i].size()), len = response_lengths[i];
    const at::Tensor local = m.heads.local[static_cast<int64_t>(i)].to(torch::kDouble).view({J, 1, 1});
    const at::Tensor global = m.heads.global[static_cast<int64_t>(i)].to(torch::kDouble).view({J, 1, 1});
    const at::Tensor loc = (renormalised[i] * local).sum(0) / local.sum().clamp_min(1);
    const at::Tensor glob = (renormalised[i] * global).sum(0) / global.sum().clamp_min(1);
    const auto [waad, fai] = naive_waad_fai(loc, glob, P, len, R, o);
    expect_near(m.waad[static_cast<int64_t>(i)], waad, 1e-5);
    expect_near(m.fai[static_cast<int64_t>(i)], fai, 1e-5);
    // Sink tokens are never flagged.
    EXPECT_FALSE(m.sink_tokens[static_cast<int64_t>(i)].logical_and(m.preplan[static_cast<int64_t>(i)].logical_or(m.anchor[static_cast<int64_t>(i)])).any().item<bool>());
  }
}

// Keeps every observed layer's attention and the value-vector norms the model passes with it.
struct FullAttentionWithValueNorms : FullAttention {
  std::map<int64_t, at::Tensor> norms;  // layer -> [H, N]
  bool wants_value_norms() const override { return true; }
  void on_chunk(const AttentionChunk& c) override {
    FullAttention::on_chunk(c);
    norms[c.layer] = c.value_norms[0].to(torch::kDouble).clone();
  }
};

// credit.attention_weighting value_norm: every edge t -> s weighted by |v_s| of the head and the row
// renormalised, then the same formulas; against loops over full maps, with layer 0's norms
// recomputed from the weights.
TEST(CreditStreaming, ValueNormWeightingMatchesNaiveReference) {
  LlamaModel model = random_model();
  CreditOptions o;
  o.sinks = credit::SinkHandling::keep;
  o.layers.mode = credit::LayerMode::all;
  o.chunk_rows = 3;
  o.window = 4;
  o.horizon_low = 2;
  o.horizon_high = 6;
  o.attention_weighting = credit::AttentionWeighting::value_norm;
  const std::vector<int64_t> layers = credit::observed_layers(o.layers, 4);
  const int64_t H = 8, Hkv = 2, J = static_cast<int64_t>(layers.size()) * H;
  std::vector<std::vector<int64_t>> prompts = {{1, 5, 6, 7}, {1, 9}};
  const std::vector<int64_t> response_lengths = {11, 6};
  std::vector<std::vector<int64_t>> responses(2);
  for (size_t i = 0; i < 2; ++i)
    for (int64_t r = 0; r < response_lengths[i]; ++r) responses[i].push_back(3 + (r * 5 + 3 * static_cast<int64_t>(i)) % 37);
  std::vector<const std::vector<int64_t>*> pp = {&prompts[0], &prompts[1]}, rr = {&responses[0], &responses[1]};
  const StepBatch batch = pad_sequences(pp, rr, 0);
  const int64_t R = batch.response_ids.size(1);
  const PolicyPass pass = policy_pass(model, batch, 1.0, 2, false, &o);
  const credit::CreditMap m = credit::build_credit_map(*pass.attention, o);
  o.attention_weighting = credit::AttentionWeighting::probability;
  const credit::CreditMap plain = credit::build_credit_map(*policy_pass(model, batch, 1.0, 2, false, &o).attention, o);

  at::Tensor embed, v_proj, norm_weight;
  model.for_each_parameter([&](const std::string& name, at::Tensor& t) {
    if (name == "model.embed_tokens.weight") embed = t.to(torch::kDouble);
    if (name == "model.layers.0.self_attn.v_proj.weight") v_proj = t.to(torch::kDouble);
    if (name == "model.layers.0.input_layernorm.weight") norm_weight = t.to(torch::kDouble);
  });
  std::vector<double> d(static_cast<size_t>(J), 0.0);
  double rows = 0;
  std::vector<at::Tensor> weighted;  // per sequence [J, N, N]
  for (size_t i = 0; i < 2; ++i) {
    std::vector<int64_t> ids = prompts[i];
    ids.insert(ids.end(), responses[i].begin(), responses[i].end());
    const int64_t P = static_cast<int64_t>(prompts[i].size()), len = response_lengths[i], N = P + len;
    FullAttentionWithValueNorms full;
    ForwardInputs in = padded_batch_inputs(torch::tensor(ids).view({1, -1}), torch::ones({1, N}, torch::kBool));
    in.observer = &full;
    {
      torch::NoGradGuard ng;
      model.forward(in);
    }
    // Layer 0 by hand: v = rms_norm(embedding) W_v^T, one norm per key-value head, shared by its query heads.
    const at::Tensor x = embed.index_select(0, torch::tensor(ids));
    const at::Tensor normed = x * torch::rsqrt(x.pow(2).mean(-1, true) + model.config().rms_norm_eps) * norm_weight;
    const at::Tensor v = torch::matmul(normed, v_proj.t()).view({N, Hkv, -1}).norm(2, -1).t();  // [Hkv, N]
    EXPECT_TRUE(torch::allclose(full.norms.at(0), v.repeat_interleave(H / Hkv, 0), 1e-4, 1e-5));
    at::Tensor maps = torch::zeros({J, N, N}, torch::kDouble);
    for (int64_t j = 0; j < J; ++j) {
      const int64_t layer = layers[static_cast<size_t>(j / H)];
      const at::Tensor A = full.maps.at(layer)[j % H];
      const at::Tensor n = full.norms.at(layer)[j % H];
      for (int64_t t = P; t < N; ++t) {
        double total = 0;
        for (int64_t k = 0; k <= t; ++k) total += A[t][k].item<double>() * n[k].item<double>();
        for (int64_t k = 0; k <= t; ++k) maps[j][t][k] = A[t][k].item<double>() * n[k].item<double>() / total;
        for (int64_t k = 0; k <= t; ++k) d[static_cast<size_t>(j)] += maps[j][t][k].item<double>() * static_cast<double>(t - k);
      }
    }
    rows += static_cast<double>(len);
    weighted.push_back(maps);
  }
  for (auto& x : d) x /= rows;
  for (int64_t b = 0; b < 2; ++b) expect_near(m.head_distance[b], d, 1e-5);
  EXPECT_GT((m.head_distance - plain.head_distance).abs().max().item<double>(), 1e-2);  // the weighting matters here
  for (size_t i = 0; i < 2; ++i) {
    const int64_t P = static_cast<int64_t>(prompts[i].size()), len = response_lengths[i];
    const at::Tensor local = m.heads.local[static_cast<int64_t>(i)].to(torch::kDouble).view({J, 1, 1});
    const at::Tensor global = m.heads.global[static_cast<int64_t>(i)].to(torch::kDouble).view({J, 1, 1});
    const at::Tensor loc = (weighted[i] * local).sum(0) / local.sum().clamp_min(1);
    const at::Tensor glob = (weighted[i] * global).sum(0) / global.sum().clamp_min(1);
    const auto [waad, fai] = naive_waad_fai(loc, glob, P, len, R, o);
    expect_near(m.waad[static_cast<int64_t>(i)], waad, 1e-5);
    expect_near(m.fai[static_cast<int64_t>(i)], fai, 1e-5);
  }
}

// ---- sentences ---------------------------------------------------------------------------

std::vector<std::string> pieces(const std::string& text, const std::vector<std::pair<size_t, size_t>>& ranges) {
  std::vector<std::string> out;
  for (auto [a, b] : ranges) out.push_back(text.substr(a, b - a));
  return out;
}

TEST(Sentences, SegmentationRules) {
  using V = std::vector<std::string>;
  const std::string t1 = "First we add them. Then we check it! Is it right? Yes";
  // "Yes" is shorter than 10 characters: the last chunk merges into the previous one.
  EXPECT_EQ(pieces(t1, credit::segment_sentences(t1, 10)), (V{"First we add them. ", "Then we check it! ", "Is it right? Yes"}));
  EXPECT_EQ(pieces(t1, credit::segment_sentences(t1, 0)), (V{"First we add them. ", "Then we check it! ", "Is it right? ", "Yes"}));
  // Short chunks merge forward; a blank line ends a sentence; "3.5" is not an end.
  const std::string t2 = "Ok. So 3.5 is x\n\nNext part here";
  EXPECT_EQ(pieces(t2, credit::segment_sentences(t2, 10)), (V{"Ok. So 3.5 is x\n\n", "Next part here"}));
  EXPECT_TRUE(credit::segment_sentences("", 10).empty());
  EXPECT_EQ(credit::segment_sentences("short", 10).size(), 1u);
  // Tokens map by their first non-space byte: " Then" belongs to sentence 1.
  const std::string t3 = "We add 3. Then 5.";
  const auto s3 = credit::segment_sentences(t3, 0);
  ASSERT_EQ(s3.size(), 2u);
  const std::vector<std::pair<size_t, size_t>> spans = {{0, 2}, {2, 6}, {6, 9}, {9, 14}, {14, 17}, {17, 17}};
  EXPECT_EQ(credit::token_sentence_ids(t3, spans, s3), (std::vector<int64_t>{0, 0, 0, 1, 1, 1}));
}

TEST(Sentences, DecodeWithSpansCoversTheDecodedText) {
  const Tokenizer tok = Tokenizer::load(std::string(ANCHOR_SOURCE_DIR_FOR_TESTS) + "data/demo-model");
  const std::string text = "19 + 7 = 26. 26 - 17 = 9. Answer: (19 + 7) - 17\n";
  const std::vector<int64_t> ids = tok.encode(text, false);
  const Decoding d = tok.decode_with_spans(ids);
  EXPECT_EQ(d.text, tok.decode(ids));
  ASSERT_EQ(d.spans.size(), ids.size());
  std::string joined;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) EXPECT_EQ(d.spans[i].first, d.spans[i - 1].second);
    joined += d.text.substr(d.spans[i].first, d.spans[i].second - d.spans[i].first);
  }
  EXPECT_EQ(joined, d.text);
  const auto sentences = credit::segment_sentences(d.text, 10);
  ASSERT_EQ(sentences.size(), 3u);
  const auto sid = credit::token_sentence_ids(d.text, d.spans, sentences);
  EXPECT_EQ(sid.front(), 0);
  EXPECT_EQ(sid.back(), 2);  // the stop newline closes the last sentence
}

TEST(CreditConfig, KeysParseAndBadValuesNameTheKey) {
  const std::string base = "model: {path: m}\ndata: {train: t.jsonl}\nreward: {components: [{name: format}]}\n";
  TrainConfig c = parse_train_config(base + "credit: {strategy: coupled, layers: [1, 3], tau_waad: 0.5}\n", "c.yaml");
  EXPECT_EQ(c.credit.strategy, credit::CreditStrategy::coupled);
  EXPECT_EQ(c.credit.layers.mode, credit::LayerMode::list);
  EXPECT_EQ(c.credit.layers.layers, (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(credit::observed_layers(c.credit.layers, 4), (std::vector<int64_t>{1, 3}));
  EXPECT_NE(train_config_to_yaml(c).find("layers: [1, 3]"), std::string::npos);
  // The round trip through the written YAML gives the same config.
  EXPECT_EQ(train_config_hash(parse_train_config(train_config_to_yaml(c), "again")), train_config_hash(c));
  auto err = [&](const std::string& credit_yaml) {
    return test::error_of([&] { parse_train_config(base + credit_yaml, "c.yaml"); });
  };
  EXPECT_NE(err("credit: {strategy: attention}\n").find("credit.strategy must be one of none, random, entropy, forking_tokens, gtpo, local_chunk, global_anchor, coupled, thought_anchor, got 'attention'"), std::string::npos);
  EXPECT_NE(err("credit: {layers: some}\n").find("credit.layers must be default, all, auto or a list"), std::string::npos);
  EXPECT_NE(err("credit: {tau_delta: big}\n").find("credit.tau_delta: expected 'median' or a number"), std::string::npos);
  EXPECT_NE(err("credit: {horizon_low: 20, horizon_high: 5}\n").find("credit.horizon_high: must be >="), std::string::npos);
  EXPECT_NE(err("credit: {head_quantile: 0.8}\n").find("credit.head_quantile"), std::string::npos);
  EXPECT_NE(err("credit: {sinks: drop}\n").find("credit.sinks must be one of keep, exclude, got 'drop'"), std::string::npos);
  EXPECT_NE(err("credit: {attention_weighting: values}\n").find("credit.attention_weighting must be one of probability, value_norm, got 'values'"), std::string::npos);
  EXPECT_NE(err("credit: {forking_fraction: 0}\n").find("credit.forking_fraction: must be in (0, 1]"), std::string::npos);
  EXPECT_NE(err("credit: {strategy: gtpo, sign: positive_only}\n").find("credit.sign: positive_only scales"), std::string::npos);
  EXPECT_NE(err("credit: {strategy: gtpo}\nalgo: {kl_coef: 0.1, kl_in: reward}\n").find("credit.strategy: gtpo sets token advantages"), std::string::npos);
  EXPECT_NE(err("credit: {sink_key_share: 1.5}\n").find("credit.sink_key_share: must be in (0, 1)"), std::string::npos);
  EXPECT_EQ(parse_train_config(base + "credit: {layers: auto, sinks: exclude}\n", "c.yaml").credit.layers.mode, credit::LayerMode::automatic);
  EXPECT_NE(test::error_of([] { credit::observed_layers({credit::LayerMode::list, {9}}, 4); }).find("credit.layers: layer 9 does not exist"),
            std::string::npos);
  // The shipped ablation configs inherit the demo through `base:` and override only credit.
  const TrainConfig ab = load_train_config(std::string(ANCHOR_SOURCE_DIR_FOR_TESTS) + "configs/ablations/coupled.yaml");
  const TrainConfig demo = load_train_config(std::string(ANCHOR_SOURCE_DIR_FOR_TESTS) + "configs/demo.yaml");
  EXPECT_EQ(ab.credit.strategy, credit::CreditStrategy::coupled);
  EXPECT_EQ(ab.rollout.prompts_per_step, demo.rollout.prompts_per_step);
  EXPECT_EQ(ab.algo.clip_high, demo.algo.clip_high);
  EXPECT_EQ(ab.reward.components.size(), demo.reward.components.size());
  const auto dir = test::scratch_dir("config_base");
  std::ofstream(dir / "a.yaml") << "base: b.yaml\noptim: {lr: 0.5}\n";
  std::ofstream(dir / "b.yaml") << "base: a.yaml\n";
  EXPECT_NE(test::error_of([&] { load_train_config((dir / "a.yaml").string()); }).find("more than 8 files deep"),
            std::string::npos);
  std::ofstream(dir / "c.yaml") << "base: missing.yaml\n";
  EXPECT_NE(test::error_of([&] { load_train_config((dir / "c.yaml").string()); }).find("missing.yaml"), std::string::npos);
  // Default layers: five evenly spaced in [floor(L/3), floor(2L/3)].
  EXPECT_EQ(credit::observed_layers({credit::LayerMode::default_spread, {}}, 32), (std::vector<int64_t>{10, 13, 16, 18, 21}));
  EXPECT_EQ(credit::observed_layers({credit::LayerMode::default_spread, {}}, 4), (std::vector<int64_t>{1, 2}));
  // auto observes every layer until a step has chosen.
  EXPECT_EQ(credit::observed_layers({credit::LayerMode::automatic, {}}, 4), (std::vector<int64_t>{0, 1, 2, 3}));
}

}  // namespace
}  // namespace anchor
