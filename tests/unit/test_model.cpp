// Model invariants on random weights: KV cache vs full forward, padding, observation,
// per-token statistics.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <set>

#include "trainer/model/llama_model.h"
#include "trainer/model/token_statistics.h"

namespace anchor {
namespace {

LlamaConfig tiny_config(bool tied = true, int64_t kv_heads = 2) {
  nlohmann::json j = {{"vocab_size", 50}, {"hidden_size", 32}, {"intermediate_size", 48},
                      {"num_hidden_layers", 3}, {"num_attention_heads", 4}, {"num_key_value_heads", kv_heads},
                      {"tie_word_embeddings", tied}, {"eos_token_id", 2}, {"bos_token_id", 1}};
  return parse_llama_config(j, "tiny");
}

LlamaModel tiny_model(bool tied = true, int64_t kv_heads = 2) {
  LlamaModel m(tiny_config(tied, kv_heads), torch::TensorOptions().dtype(torch::kFloat), 3);
  // Larger weights than the 0.02 init so that attention patterns are far from uniform.
  m.for_each_parameter([](const std::string& name, at::Tensor& t) {
    if (name.find("norm") == std::string::npos) t.mul_(8.0);
  });
  return m;
}

TEST(LlamaModel, KvCacheDecodingEqualsFullForward) {
  LlamaModel model = tiny_model();
  torch::manual_seed(1);
  at::Tensor ids = torch::randint(3, 50, {2, 11}, torch::kLong);
  at::Tensor mask = torch::ones({2, 11}, torch::kBool);
  mask[1].slice(0, 0, 3).fill_(false);  // row 1 is left-padded
  torch::NoGradGuard no_grad;
  at::Tensor full = model.forward(padded_batch_inputs(ids, mask));

  KVCache cache = model.make_cache(2, 11);
  const int64_t prefill = 5;
  ForwardInputs in = padded_batch_inputs(ids.slice(1, 0, prefill), mask.slice(1, 0, prefill));
  in.cache = &cache;
  std::vector<at::Tensor> pieces{model.forward(in)};
  at::Tensor positions = (mask.to(torch::kLong).cumsum(1) - 1).clamp_min(0);
  for (int64_t t = prefill; t < 11; ++t) {
    ForwardInputs step;
    step.input_ids = ids.slice(1, t, t + 1);
    step.position_ids = positions.slice(1, t, t + 1);
    step.key_mask = mask.slice(1, 0, t + 1);
    step.cache = &cache;
    pieces.push_back(model.forward(step));
  }
  EXPECT_EQ(cache.length, 11);
  at::Tensor incremental = torch::cat(pieces, 1);
  at::Tensor keep = mask.unsqueeze(-1).expand_as(full);
  EXPECT_LT((full - incremental).abs().masked_select(keep).max().item<double>(), 1e-5);
}

TEST(LlamaModel, PaddedBatchEqualsEachSequenceAlone) {
  LlamaModel model = tiny_model(false, 4);
  torch::manual_seed(2);
  at::Tensor a = torch::randint(3, 50, {1, 9}, torch::kLong);
  at::Tensor b = torch::randint(3, 50, {1, 5}, torch::kLong);
  at::Tensor batch = torch::zeros({2, 9}, torch::kLong);
  at::Tensor mask = torch::zeros({2, 9}, torch::kBool);
  batch[0].copy_(a[0]);
  mask[0].fill_(true);
  batch[1].slice(0, 4).copy_(b[0]);
  mask[1].slice(0, 4).fill_(true);
  torch::NoGradGuard no_grad;
  at::Tensor both = model.forward(padded_batch_inputs(batch, mask));
  at::Tensor alone_a = model.forward(padded_batch_inputs(a, torch::ones_like(a, torch::kBool)));
  at::Tensor alone_b = model.forward(padded_batch_inputs(b, torch::ones_like(b, torch::kBool)));
  EXPECT_LT((both[0] - alone_a[0]).abs().max().item<double>(), 1e-5);
  EXPECT_LT((both[1].slice(0, 4) - alone_b[0]).abs().max().item<double>(), 1e-5);
}

// Naive observer: keeps every chunk of the chosen layers (test-only; the real credit code
// reduces chunks on the fly).
struct KeepAll : AttentionObserver {
  std::set<int64_t> layers;
  int64_t rows = 4;
  std::vector<AttentionChunk> chunks;
  bool observes_layer(int64_t l) const override { return layers.count(l) > 0; }
  int64_t chunk_rows() const override { return rows; }
  void on_chunk(const AttentionChunk& c) override { chunks.push_back(AttentionChunk{c.layer, c.query_begin, c.key_offset, c.probs.clone()}); }
};

TEST(LlamaModel, ObserverSeesCausalRowStochasticChunksWithoutChangingOutput) {
  LlamaModel model = tiny_model();
  torch::manual_seed(4);
  at::Tensor ids = torch::randint(3, 50, {2, 10}, torch::kLong);
  at::Tensor mask = torch::ones({2, 10}, torch::kBool);
  mask[0].slice(0, 0, 2).fill_(false);
  KeepAll observer;
  observer.layers = {0, 2};
  torch::NoGradGuard no_grad;
  ForwardInputs in = padded_batch_inputs(ids, mask);
  at::Tensor plain = model.forward(in);
  in.observer = &observer;
  at::Tensor observed = model.forward(in);
  EXPECT_LT((plain - observed).abs().max().item<double>(), 1e-5);
  ASSERT_EQ(observer.chunks.size(), 6u);  // 2 layers x chunks of 4, 4, 2 rows
  EXPECT_EQ(observer.chunks[2].probs.size(2), 2);
  for (const auto& c : observer.chunks) {
    // Keys up to the chunk's last query row (later keys are causally masked and left out).
    EXPECT_EQ(c.probs.sizes(), (std::vector<int64_t>{2, 4, c.probs.size(2), c.query_begin + c.probs.size(2)}));
    for (int64_t r = 0; r < c.probs.size(2); ++r) {
      const int64_t t = c.query_begin + r;
      at::Tensor row = c.probs.select(2, r);  // [B, H, S]
      EXPECT_LT((row.sum(-1) - 1).abs().max().item<double>(), 1e-5);
      if (t + 1 < row.size(-1)) EXPECT_EQ(row.slice(-1, t + 1).abs().max().item<float>(), 0.0f) << "future key attended";
      if (t >= 2) EXPECT_EQ(row[0].slice(-1, 0, 2).abs().max().item<float>(), 0.0f) << "padding key attended";
    }
  }
}

TEST(TokenStatistics, HandComputedLogprobAndEntropy) {
  // Row 0: two equal logits -> p = 1/2 each; row 1: logits (ln 3, 0) -> p = (3/4, 1/4).
  at::Tensor logits = torch::tensor({0.0f, 0.0f, std::log(3.0f), 0.0f}).view({1, 2, 2});
  at::Tensor targets = torch::tensor({1, 1}, torch::kLong).view({1, 2});
  at::Tensor lp = token_logprobs(logits, targets);
  EXPECT_NEAR(lp[0][0].item<float>(), std::log(0.5), 1e-6);
  EXPECT_NEAR(lp[0][1].item<float>(), std::log(0.25), 1e-6);
  at::Tensor h = token_entropy(logits);
  EXPECT_NEAR(h[0][0].item<float>(), std::log(2.0), 1e-6);
  EXPECT_NEAR(h[0][1].item<float>(), -(0.75 * std::log(0.75) + 0.25 * std::log(0.25)), 1e-6);
}

TEST(LlamaModel, ResizeVocabAppendsMeanRowsAndKeepsOldLogits) {
  LlamaModel model = tiny_model(false);
  torch::NoGradGuard no_grad;
  at::Tensor ids = torch::tensor({{3, 4, 5}}, torch::kLong);
  const auto in = padded_batch_inputs(ids, torch::ones_like(ids, torch::kBool));
  at::Tensor before = model.forward(in);
  model.resize_vocab(53, 0.0);
  at::Tensor after = model.forward(in);
  EXPECT_EQ(after.size(-1), 53);
  EXPECT_LT((after.slice(-1, 0, 50) - before).abs().max().item<double>(), 1e-6);
  const auto params = model.named_parameters();
  at::Tensor embed = params.front().second;
  EXPECT_LT((embed[51] - embed.slice(0, 0, 50).mean(0)).abs().max().item<double>(), 1e-6);
}

}  // namespace
}  // namespace anchor
