#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <set>

#include "tests/unit/test_util.h"
#include "trainer/model/pretrained.h"
#include "trainer/rollout/sampler.h"

namespace anchor {
namespace {

namespace fs = std::filesystem;

Pretrained fixture_model() {
  return load_pretrained((fs::path(test::fixtures_dir()) / "llama_gqa_tied").string(),
                         torch::TensorOptions().dtype(torch::kFloat));
}

std::vector<std::vector<int64_t>> prompts(const Tokenizer& tok) {
  return {tok.encode("Count down: 12 + 7", true), tok.encode("Hello", true), tok.encode("The quick brown fox", true)};
}

// Each of prompts() `copies` times in a row, as an RL group samples it.
std::vector<std::vector<int64_t>> grouped_prompts(const Tokenizer& tok, int copies) {
  std::vector<std::vector<int64_t>> out;
  for (const auto& prompt : prompts(tok))
    for (int g = 0; g < copies; ++g) out.push_back(prompt);
  return out;
}

std::vector<int64_t> row(const RolloutBatch& b, int64_t i) {
  const int64_t n = b.response_mask[i].sum().item<int64_t>();
  at::Tensor r = b.response_ids[i].slice(0, 0, n).contiguous();
  return {r.data_ptr<int64_t>(), r.data_ptr<int64_t>() + n};
}

TEST(Sampler, SameSeedSameSamplesOtherSeedOtherSamples) {
  ANCHOR_REQUIRE_FIXTURES();
  Pretrained p = fixture_model();
  SamplingParams params;
  params.max_new_tokens = 16;
  params.seed = 11;
  RolloutBatch a = generate(p.model, p.tokenizer, prompts(p.tokenizer), params);
  RolloutBatch b = generate(p.model, p.tokenizer, prompts(p.tokenizer), params);
  EXPECT_TRUE(torch::equal(a.response_ids, b.response_ids));
  EXPECT_TRUE(torch::equal(a.sampling_logprobs, b.sampling_logprobs));
  params.seed = 12;
  RolloutBatch c = generate(p.model, p.tokenizer, prompts(p.tokenizer), params);
  EXPECT_FALSE(a.response_ids.sizes() == c.response_ids.sizes() && torch::equal(a.response_ids, c.response_ids));
}

// Data-parallel ranks sample their shard of the global batch: with rows numbered by global
// stream, a shard draws exactly the tokens the whole batch draws for those rows.
TEST(Sampler, RowDrawsDependOnlyOnTheirStream) {
  ANCHOR_REQUIRE_FIXTURES();
  Pretrained p = fixture_model();
  const std::vector<std::vector<int64_t>> all = grouped_prompts(p.tokenizer, 2);
  SamplingParams params;
  params.max_new_tokens = 16;
  params.seed = 21;
  const RolloutBatch whole = generate(p.model, p.tokenizer, all, params);
  const size_t half = all.size() / 2;
  params.streams.clear();
  for (size_t i = half; i < all.size(); ++i) params.streams.push_back(static_cast<int64_t>(i));
  const RolloutBatch shard =
      generate(p.model, p.tokenizer, std::vector<std::vector<int64_t>>(all.begin() + half, all.end()), params);
  for (size_t i = half; i < all.size(); ++i)
    EXPECT_EQ(row(whole, static_cast<int64_t>(i)), row(shard, static_cast<int64_t>(i - half))) << "row " << i;
  // Without the stream numbers the shard would reuse rows 0.. 's draws.
  EXPECT_EQ(stream_uniforms(21, {3}, 4).item<float>(), stream_uniforms(21, {0, 3}, 4)[1].item<float>());
  EXPECT_NE(stream_uniforms(21, {3}, 4).item<float>(), stream_uniforms(21, {3}, 5).item<float>());
}

// The memory plan's sampling chunks: generate_in_chunks joins the pieces into the batch one call
// gives (prompts left-padded, responses right-padded; every row from its own stream).
TEST(Sampler, ChunkedGenerationEqualsOneCall) {
  ANCHOR_REQUIRE_FIXTURES();
  Pretrained p = fixture_model();
  const std::vector<std::vector<int64_t>> all = grouped_prompts(p.tokenizer, 3);
  SamplingParams params;
  params.max_new_tokens = 16;
  params.seed = 31;
  std::vector<std::pair<int64_t, int64_t>> streamed_whole, streamed_chunks;
  params.on_token = [&](int64_t r, int64_t t) { streamed_whole.emplace_back(r, t); };
  const RolloutBatch whole = generate(p.model, p.tokenizer, all, params);
  for (int64_t chunk : {1, 2, 4, 9, 100}) {
    streamed_chunks.clear();
    params.on_token = [&](int64_t r, int64_t t) { streamed_chunks.emplace_back(r, t); };
    const RolloutBatch chunks = generate_in_chunks(p.model, p.tokenizer, all, params, chunk);
    ASSERT_TRUE(torch::equal(whole.prompt_ids, chunks.prompt_ids)) << chunk;
    EXPECT_TRUE(torch::equal(whole.prompt_mask, chunks.prompt_mask)) << chunk;
    ASSERT_TRUE(torch::equal(whole.response_ids, chunks.response_ids)) << chunk;
    EXPECT_TRUE(torch::equal(whole.response_mask, chunks.response_mask)) << chunk;
    // Log-probs round differently with the GEMM's row count (tokens do not).
    EXPECT_LT((whole.sampling_logprobs - chunks.sampling_logprobs).abs().max().item<double>(), 1e-5) << chunk;
    EXPECT_EQ(whole.response_texts, chunks.response_texts) << chunk;
    EXPECT_EQ(whole.generated_tokens, chunks.generated_tokens) << chunk;
    std::multiset<std::pair<int64_t, int64_t>> a(streamed_whole.begin(), streamed_whole.end()),
        b(streamed_chunks.begin(), streamed_chunks.end());
    EXPECT_EQ(a, b) << "streamed (row, token) pairs, chunk " << chunk;
  }
}

TEST(Sampler, KvCacheEqualsFullRecompute) {
  ANCHOR_REQUIRE_FIXTURES();
  Pretrained p = fixture_model();
  SamplingParams params;
  params.max_new_tokens = 20;
  params.top_p = 0.9;
  params.seed = 5;
  RolloutBatch cached = generate(p.model, p.tokenizer, prompts(p.tokenizer), params);
  params.use_cache = false;
  RolloutBatch recomputed = generate(p.model, p.tokenizer, prompts(p.tokenizer), params);
  ASSERT_TRUE(torch::equal(cached.response_ids, recomputed.response_ids));
  EXPECT_TRUE(torch::equal(cached.response_mask, recomputed.response_mask));
  EXPECT_LT((cached.sampling_logprobs - recomputed.sampling_logprobs).abs().max().item<double>(), 1e-5);
}

// Groups of repeated prompts (RL: G samples per prompt) prefill each distinct prompt once and
// copy its cache rows; sampling is unchanged compared with prefilling every row.
TEST(Sampler, SharedPrefillEqualsPrefillingEveryRow) {
  ANCHOR_REQUIRE_FIXTURES();
  Pretrained p = fixture_model();
  const std::vector<std::vector<int64_t>> grouped = grouped_prompts(p.tokenizer, 3);
  SamplingParams params;
  params.max_new_tokens = 16;
  params.seed = 9;
  RolloutBatch shared = generate(p.model, p.tokenizer, grouped, params);
  params.share_prefill = false;
  RolloutBatch separate = generate(p.model, p.tokenizer, grouped, params);
  ASSERT_TRUE(torch::equal(shared.response_ids, separate.response_ids));
  EXPECT_TRUE(torch::equal(shared.response_mask, separate.response_mask));
  EXPECT_LT((shared.sampling_logprobs - separate.sampling_logprobs).abs().max().item<double>(), 1e-5);
  // Samples within a group differ (each row has its own draws after the shared prefill).
  EXPECT_FALSE(row(shared, 0) == row(shared, 1) && row(shared, 1) == row(shared, 2));
}

TEST(Sampler, LogprobsAreThoseOfTheModelAtTemperature) {
  ANCHOR_REQUIRE_FIXTURES();
  Pretrained p = fixture_model();
  SamplingParams params;
  params.max_new_tokens = 12;
  params.temperature = 0.7;
  params.seed = 2;
  const auto prompt = prompts(p.tokenizer);
  RolloutBatch out = generate(p.model, p.tokenizer, {prompt[0]}, params);
  // Rescore prompt + response in one forward and compare with the recorded logprobs.
  std::vector<int64_t> ids = prompt[0];
  const auto response = row(out, 0);
  ids.insert(ids.end(), response.begin(), response.end());
  at::Tensor seq = torch::tensor(ids, torch::kLong).unsqueeze(0);
  torch::NoGradGuard no_grad;
  at::Tensor logits = p.model.forward(padded_batch_inputs(seq, torch::ones_like(seq, torch::kBool)));
  const int64_t P = static_cast<int64_t>(prompt[0].size()), R = static_cast<int64_t>(response.size());
  at::Tensor lp = torch::log_softmax(logits[0].slice(0, P - 1, P - 1 + R) / 0.7, -1)
                      .gather(-1, seq[0].slice(0, P).unsqueeze(-1)).squeeze(-1);
  EXPECT_LT((lp - out.sampling_logprobs[0].slice(0, 0, R)).abs().max().item<double>(), 1e-4);
}

TEST(Sampler, RowsFinishIndependentlyAndMatchSingleRuns) {
  ANCHOR_REQUIRE_FIXTURES();
  Pretrained p = fixture_model();
  SamplingParams params;
  params.temperature = 0.0;
  params.max_new_tokens = 24;
  const auto all = prompts(p.tokenizer);
  RolloutBatch batch = generate(p.model, p.tokenizer, all, params);
  for (size_t i = 0; i < all.size(); ++i) {
    RolloutBatch alone = generate(p.model, p.tokenizer, {all[i]}, params);
    EXPECT_EQ(row(batch, static_cast<int64_t>(i)), row(alone, 0)) << "prompt " << i;
    EXPECT_EQ(batch.finish_reasons[i], alone.finish_reasons[0]);
  }
  // Padding after a finished row is masked and holds pad_id.
  for (int64_t i = 0; i < batch.response_ids.size(0); ++i) {
    const int64_t n = batch.response_mask[i].sum().item<int64_t>();
    if (batch.finish_reasons[static_cast<size_t>(i)] == FinishReason::length) EXPECT_EQ(n, 24);
    EXPECT_TRUE((batch.response_ids[i].slice(0, n) == batch.pad_id).all().item<bool>());
    EXPECT_TRUE((batch.sampling_logprobs[i].slice(0, n) == 0).all().item<bool>());
  }
}

TEST(Sampler, DecodeBatchSizesStepByAQuarterOctave) {
  const std::vector<std::pair<int64_t, int64_t>> cases = {{1, 1},    {7, 7},     {8, 8},     {9, 10},   {11, 12},
                                                          {16, 16},  {17, 20},   {33, 40},   {100, 112}, {129, 160},
                                                          {192, 192}, {193, 224}, {1000, 1024}};
  for (const auto& [live, size] : cases) EXPECT_EQ(decode_batch_size(live), size) << live << " live rows";
  std::set<int64_t> sizes;
  for (int64_t live = 1; live <= 1024; ++live) {
    const int64_t size = decode_batch_size(live);
    EXPECT_GE(size, live);
    EXPECT_LE(4 * size, 5 * live) << live;  // at most 25% padding
    sizes.insert(size);
  }
  EXPECT_EQ(sizes.size(), 36u);  // 1..8, then 10, 12, 14 and four per doubling from 16 to 1024
}

// Finished rows stay in the decode batch as padding until the live ones fit a smaller size:
// a batch of 24 rows that finish at different steps (some padded, some dropped) gives every row
// exactly what it gives alone.
TEST(Sampler, PaddedDecodeBatchMatchesSingleRuns) {
  Pretrained p = load_pretrained(std::string(ANCHOR_SOURCE_DIR_FOR_TESTS) + "data/demo-model",
                                 torch::TensorOptions().dtype(torch::kFloat));
  std::vector<std::vector<int64_t>> all;
  SamplingParams params;
  for (int64_t r = 0; r < 24; ++r) {
    // 1-, 2- and 3-digit numbers: answers of several lengths.
    all.push_back(p.tokenizer.encode("Numbers: " + std::to_string(1 + r % 9) + " " + std::to_string(5 + r * 7 % 95) +
                                         " " + std::to_string(100 + r * 37 % 900) + ". Target: " +
                                         std::to_string(r % 2 ? 10 + r : 200 + 31 * r) + ".\n",
                                     true));
    params.streams.push_back(100 + r);
  }
  params.max_new_tokens = 40;
  params.seed = 4;
  params.stop_strings = {"\n"};
  const RolloutBatch batch = generate(p.model, p.tokenizer, all, params);
  std::set<int64_t> lengths;
  for (size_t i = 0; i < all.size(); ++i) {
    SamplingParams one = params;
    one.streams = {params.streams[i]};
    const RolloutBatch alone = generate(p.model, p.tokenizer, {all[i]}, one);
    const auto ids = row(batch, static_cast<int64_t>(i));
    EXPECT_EQ(ids, row(alone, 0)) << "row " << i;
    EXPECT_EQ(batch.response_texts[i], alone.response_texts[0]) << "row " << i;
    const int64_t n = static_cast<int64_t>(ids.size());
    if (ids == row(alone, 0))
      EXPECT_LT((batch.sampling_logprobs[static_cast<int64_t>(i)].slice(0, 0, n) - alone.sampling_logprobs[0].slice(0, 0, n))
                    .abs()
                    .max()
                    .item<double>(),
                1e-4);  // GEMMs of 24 rows and of one round differently
    lengths.insert(n);
  }
  EXPECT_GE(lengths.size(), 5u) << "rows should finish at different steps";
  std::printf("%zu distinct lengths\n", lengths.size());
}

TEST(Sampler, TopKOneIsGreedyAndBannedTokensNeverAppear) {
  ANCHOR_REQUIRE_FIXTURES();
  Pretrained p = fixture_model();
  SamplingParams greedy;
  greedy.temperature = 0.0;
  greedy.max_new_tokens = 16;
  SamplingParams top1 = greedy;
  top1.temperature = 1.3;
  top1.top_k = 1;
  top1.seed = 99;
  const auto all = prompts(p.tokenizer);
  RolloutBatch a = generate(p.model, p.tokenizer, all, greedy);
  RolloutBatch b = generate(p.model, p.tokenizer, all, top1);
  EXPECT_TRUE(torch::equal(a.response_ids, b.response_ids));

  // Ban the greedy path's first token of every row: it must never be produced again.
  SamplingParams banned = greedy;
  for (int64_t i = 0; i < a.response_ids.size(0); ++i) banned.banned_token_ids.push_back(a.response_ids[i][0].item<int64_t>());
  banned.temperature = 1.0;
  banned.max_new_tokens = 32;
  RolloutBatch c = generate(p.model, p.tokenizer, all, banned);
  for (int64_t id : banned.banned_token_ids)
    EXPECT_FALSE((c.response_ids.masked_select(c.response_mask) == id).any().item<bool>()) << id;
}

TEST(Sampler, StopStringsAndMaxNewTokens) {
  ANCHOR_REQUIRE_FIXTURES();
  Pretrained p = fixture_model();
  SamplingParams params;
  params.temperature = 0.0;
  params.max_new_tokens = 24;
  params.stop_token_ids = {-1};  // nothing stops early but the stop string
  const auto prompt = p.tokenizer.encode("Hello", true);
  RolloutBatch free_run = generate(p.model, p.tokenizer, {prompt}, params);
  const std::string text = free_run.response_texts[0];
  ASSERT_GE(text.size(), 12u);
  EXPECT_EQ(free_run.finish_reasons[0], FinishReason::length);
  const std::string stop = text.substr(6, 3);
  params.stop_strings = {stop, "never-appears"};
  RolloutBatch stopped = generate(p.model, p.tokenizer, {prompt}, params);
  EXPECT_EQ(stopped.finish_reasons[0], FinishReason::stop_string);
  const std::string cut = stopped.response_texts[0];
  EXPECT_EQ(cut, text.substr(0, text.find(stop) + stop.size()));
  EXPECT_LT(stopped.response_ids.size(1), 24);
  params.stop_strings.clear();
  params.max_new_tokens = 3;
  RolloutBatch short_run = generate(p.model, p.tokenizer, {prompt}, params);
  EXPECT_EQ(short_run.response_ids.size(1), 3);
  EXPECT_EQ(short_run.generated_tokens, 3);
}

TEST(Sampler, TopPKeepsSmallestPrefixReachingMass) {
  // probs (0.5, 0.3, 0.15, 0.05): top_p 0.7 keeps tokens 0 and 1 only, renormalised 5/8, 3/8.
  at::Tensor probs = torch::tensor({0.5f, 0.3f, 0.15f, 0.05f});
  at::Tensor logits = probs.log().unsqueeze(0).repeat({4000, 1});
  SamplingParams params;
  params.top_p = 0.7;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
  auto [tokens, logprobs] = sample_next_tokens(logits, params, torch::rand({4000}, gen));
  EXPECT_TRUE((tokens <= 1).all().item<bool>());
  const double share0 = (tokens == 0).to(torch::kFloat).mean().item<double>();
  EXPECT_NEAR(share0, 5.0 / 8.0, 0.03);
  // Logprobs are under the untruncated distribution.
  EXPECT_NEAR(logprobs[0].item<float>(), std::log(tokens[0].item<int64_t>() == 0 ? 0.5 : 0.3), 1e-5);
  // Ids beyond the tokenizer's vocabulary are never drawn.
  auto [limited, _] = sample_next_tokens(torch::zeros({200, 4}), SamplingParams{}, torch::rand({200}, gen), 2);
  EXPECT_TRUE((limited < 2).all().item<bool>());
}

TEST(Sampler, InverseCdfDrawsFollowTheDistribution) {
  // 40 000 draws from (0.5, 0.25, 0.15, 0.1, 0, 0) at temperature 1, and at temperature 2 from
  // the flattened distribution p^(1/2) / sum; each share within 4 standard errors; zero-probability
  // and banned tokens never appear.
  const std::vector<double> p = {0.5, 0.25, 0.15, 0.1, 0.0, 0.0};
  at::Tensor logits = torch::tensor(std::vector<float>{0.5f, 0.25f, 0.15f, 0.1f, 0.f, 0.f}).log().unsqueeze(0).repeat({40000, 1});
  for (double temperature : {1.0, 2.0}) {
    SamplingParams params;
    params.temperature = temperature;
    params.banned_token_ids = {3};
    std::vector<int64_t> streams(40000);
    for (int64_t i = 0; i < 40000; ++i) streams[static_cast<size_t>(i)] = i;
    // The counter-based draws the sampler uses (one per stream), not torch's generator.
    auto [tokens, logprobs] = sample_next_tokens(logits, params, stream_uniforms(11, streams, 0));
    std::vector<double> q(p.size(), 0.0);
    double sum = 0;
    for (size_t i = 0; i < 3; ++i) sum += q[i] = std::pow(p[i], 1.0 / temperature);  // token 3 banned
    for (size_t i = 0; i < p.size(); ++i) {
      const double expected = q[i] / sum;
      const double share = (tokens == static_cast<int64_t>(i)).to(torch::kDouble).mean().item<double>();
      const double se = std::sqrt(std::max(expected * (1 - expected), 1e-12) / 40000.0);
      if (expected == 0) EXPECT_EQ(share, 0.0) << "token " << i << " T " << temperature;
      else EXPECT_NEAR(share, expected, 4 * se) << "token " << i << " T " << temperature;
      // The recorded log-prob is log of the tempered, ban-aware probability.
      if (expected > 0) {
        const at::Tensor rows = (tokens == static_cast<int64_t>(i)).nonzero().flatten();
        EXPECT_NEAR(logprobs.index_select(0, rows)[0].item<double>(), std::log(expected), 1e-5);
      }
    }
  }
}

}  // namespace
}  // namespace anchor
