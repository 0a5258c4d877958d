// Shared-prompt passes (Prefix Grouper, docs/design.md §2): each distinct prompt of a batch is
// encoded once and every response attends to [its prompt's keys ; its own keys]. Log-probs,
// entropies, gradients and the observed attention statistics must equal the unshared batch and
// a naive reference that runs every sequence alone, unpadded.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "credit/attention_statistics.h"
#include "trainer/algo/policy_loss.h"
#include "trainer/model/pretrained.h"
#include "trainer/model/response_statistics.h"
#include "trainer/model/token_statistics.h"
#include "trainer/rl/policy_pass.h"
#include "trainer/rl/ppo_update.h"

namespace anchor {
namespace {

// A tiny model shaped like SmolLM2 (9 query heads over 3 key/value heads, tied embeddings,
// rope_theta 1e5), with weights large enough for attention far from uniform.
LlamaModel smollm2_shaped_model() {
  nlohmann::json j = {{"vocab_size", 60},          {"hidden_size", 72},        {"intermediate_size", 96},
                      {"num_hidden_layers", 3},    {"num_attention_heads", 9}, {"num_key_value_heads", 3},
                      {"tie_word_embeddings", true}, {"rope_theta", 100000.0}, {"eos_token_id", 2}};
  LlamaModel m(parse_llama_config(j, "smollm2-shaped"), torch::TensorOptions().dtype(torch::kFloat), 11);
  torch::NoGradGuard no_grad;
  m.for_each_parameter([](const std::string& name, at::Tensor& t) {
    if (name.find("norm") == std::string::npos) t.mul_(4.0);
  });
  return m;
}

// The shipped demo model (data/demo-model: 4 heads over 2 key/value heads, head_dim 32).
LlamaModel demo_model() {
  return load_model(std::string(ANCHOR_SOURCE_DIR_FOR_TESTS) + "data/demo-model",
                    torch::TensorOptions().dtype(torch::kFloat));
}

// Three groups (G = 3, 2, 3 rows) with different prompt lengths, left-padded to one width, and
// responses of different lengths (one empty), right-padded. Rows of one group are not adjacent.
StepBatch grouped_batch(int64_t vocab) {
  torch::manual_seed(7);
  const int64_t P = 6, R = 8;
  const int64_t prompt_len[] = {6, 3, 5};
  const int64_t group_of[] = {0, 1, 0, 2, 1, 0, 2, 2};
  const int64_t response_len[] = {8, 2, 5, 0, 7, 1, 4, 8};
  const int64_t N = 8;
  const at::Tensor prompts = torch::randint(3, vocab, {3, P}, torch::kLong);
  StepBatch b;
  b.prompt_ids = torch::zeros({N, P}, torch::kLong);
  b.prompt_mask = torch::zeros({N, P}, torch::kBool);
  b.response_ids = torch::randint(3, vocab, {N, R}, torch::kLong);
  b.response_mask = torch::zeros({N, R}, torch::kBool);
  for (int64_t i = 0; i < N; ++i) {
    const int64_t g = group_of[i], n = prompt_len[g];
    b.prompt_ids[i].slice(0, P - n).copy_(prompts[g].slice(0, P - n));
    b.prompt_mask[i].slice(0, P - n).fill_(true);
    b.response_mask[i].slice(0, 0, response_len[i]).fill_(true);
  }
  b.response_ids.masked_fill_(b.response_mask.logical_not(), 0);
  return b;
}

ResponseStatistics statistics(const LlamaModel& model, const StepBatch& b, bool share,
                              AttentionObserver* observer = nullptr) {
  ResponseStatisticsOptions o;
  o.temperature = 0.9;
  o.with_entropy = true;
  o.entropy_grad = true;
  o.share_prompts = share;
  o.observer = observer;
  return response_statistics(model, b.prompt_ids, b.prompt_mask, b.response_ids, b.response_mask, o);
}

// A scalar loss that reads every log-prob and entropy with its own weight.
at::Tensor weighted_loss(const ResponseStatistics& st, const at::Tensor& weights) {
  return (st.logprobs * weights).sum() + 0.3 * (st.entropy * weights.flip(1)).sum();
}

std::vector<at::Tensor> gradients(const LlamaModel& model, const at::Tensor& loss) {
  std::vector<at::Tensor> params = model.parameters();
  for (auto& p : params) p.mutable_grad() = at::Tensor();
  loss.backward();
  std::vector<at::Tensor> out;
  for (const auto& p : params) out.push_back(p.grad().clone());
  return out;
}

double relative_difference(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().max().item<double>() / (b.abs().max().item<double>() + 1e-12);
}

// Largest difference in units of the reference's magnitude (at least 1): the two layouts reach
// entropies and log-probabilities through differently shaped matmuls and a log-sum-exp, whose
// float32 rounding grows with the values (an absolute 1e-5 failed by 1.05e-5 on an AMD EPYC).
double scaled_difference(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().max().item<double>() / std::max(1.0, b.abs().max().item<double>());
}

void expect_shared_equals_unshared_and_alone(LlamaModel model, const std::string& what) {
  model.set_requires_grad(true);
  const StepBatch b = grouped_batch(model.config().vocab_size);
  const int64_t N = b.response_ids.size(0), R = b.response_ids.size(1);
  const at::Tensor weights = torch::randn({N, R}) * b.response_mask.to(torch::kFloat);

  const ResponseStatistics shared = statistics(model, b, true);
  const ResponseStatistics unshared = statistics(model, b, false);
  EXPECT_EQ(shared.positions, 3 * 6 + 8 * 8) << what;  // three prompts encoded once, eight responses
  EXPECT_EQ(unshared.positions, 8 * (6 + 8)) << what;
  EXPECT_LT(scaled_difference(shared.logprobs, unshared.logprobs), 1e-5) << what;
  EXPECT_LT(scaled_difference(shared.entropy, unshared.entropy), 1e-5) << what;
  const auto g_shared = gradients(model, weighted_loss(shared, weights));
  const auto g_unshared = gradients(model, weighted_loss(unshared, weights));

  // Naive reference: each sequence alone, without padding, through the plain forward.
  at::Tensor loss_alone = torch::zeros({}, torch::kFloat);
  for (int64_t i = 0; i < N; ++i) {
    const at::Tensor p = b.prompt_ids[i].masked_select(b.prompt_mask[i]);
    const int64_t n = b.response_mask[i].sum().item<int64_t>();
    if (n == 0) continue;
    const at::Tensor r = b.response_ids[i].slice(0, 0, n);
    const at::Tensor ids = torch::cat({p, r}).unsqueeze(0);
    const at::Tensor logits = model.forward(padded_batch_inputs(ids, torch::ones_like(ids, torch::kBool)))
                                  .slice(1, p.size(0) - 1, p.size(0) - 1 + n) / 0.9;
    const at::Tensor lp = token_logprobs(logits, r.unsqueeze(0))[0];
    const at::Tensor ent = token_entropy(logits)[0];
    EXPECT_LT(scaled_difference(shared.logprobs[i].slice(0, 0, n), lp), 1e-5) << what << " row " << i;
    EXPECT_LT(scaled_difference(shared.entropy[i].slice(0, 0, n), ent), 1e-5) << what << " row " << i;
    loss_alone = loss_alone + (lp * weights[i].slice(0, 0, n)).sum() + 0.3 * (ent * weights.flip(1)[i].slice(0, 0, n)).sum();
  }
  EXPECT_EQ(shared.logprobs.masked_select(b.response_mask.logical_not()).abs().sum().item<double>(), 0.0);
  const auto g_alone = gradients(model, loss_alone);
  const auto names = model.named_parameters();
  for (size_t k = 0; k < g_shared.size(); ++k) {
    EXPECT_LT(relative_difference(g_shared[k], g_unshared[k]), 1e-5) << what << " " << names[k].first;
    EXPECT_LT(relative_difference(g_shared[k], g_alone[k]), 1e-5) << what << " " << names[k].first;
  }
}

TEST(SharedPrompts, LogprobsEntropiesAndGradientsEqualUnsharedAndEachSequenceAlone) {
  expect_shared_equals_unshared_and_alone(smollm2_shaped_model(), "smollm2-shaped");
  expect_shared_equals_unshared_and_alone(demo_model(), "demo model");
}

TEST(SharedPrompts, BatchesWithoutRepeatedPromptsTakeThePlainPath) {
  LlamaModel model = smollm2_shaped_model();
  StepBatch b = grouped_batch(model.config().vocab_size);
  const at::Tensor first = torch::tensor({0, 1, 3}, torch::kLong);  // one row of each group
  b = select_rows(b, first);
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(statistics(model, b, true).logprobs, statistics(model, b, false).logprobs));
}

// The credit observer reads response rows only, so it sees the same attention in both layouts.
TEST(SharedPrompts, ObservedAttentionStatisticsEqualTheUnsharedPass) {
  LlamaModel model = smollm2_shaped_model();
  const StepBatch b = grouped_batch(model.config().vocab_size);
  credit::CreditOptions credit;
  credit.layers = {credit::LayerMode::all, {}};
  credit.chunk_rows = 3;  // several chunks per layer, straddling the prompt / response boundary
  credit.horizon_low = 1;
  credit.horizon_high = 4;
  credit.window = 3;
  const at::Tensor sentences = torch::tensor({0, 0, 0, 1, 1, 2, 2, 2}).repeat({8, 1});
  PolicyPass passes[2];
  for (int share = 0; share < 2; ++share)
    passes[share] = policy_pass(model, b, 1.0, /*micro_batch=*/5, true, &credit,
                                sentences.masked_fill(b.response_mask.logical_not(), -1), share == 1);
  const auto& s = *passes[1].attention;
  const auto& u = *passes[0].attention;
  EXPECT_LT((passes[1].logprobs - passes[0].logprobs).abs().max().item<double>(), 1e-5);
  EXPECT_LT((passes[1].entropy - passes[0].entropy).abs().max().item<double>(), 1e-5);
  EXPECT_LT(relative_difference(s.lookback_sum, u.lookback_sum), 1e-5);
  EXPECT_LT(relative_difference(s.waad_heads, u.waad_heads), 1e-5);
  EXPECT_LT(relative_difference(s.fai_sums, u.fai_sums), 1e-5);
  EXPECT_LT(relative_difference(s.block_sums, u.block_sums), 1e-5);
  EXPECT_LT(relative_difference(s.sink_mass_sum, u.sink_mass_sum), 1e-5);
  EXPECT_LT(relative_difference(s.first_token_mass_sum, u.first_token_mass_sum), 1e-5);
  EXPECT_TRUE(torch::equal(s.prompt_sink_heads, u.prompt_sink_heads));
  EXPECT_TRUE(torch::equal(s.response_sink_heads, u.response_sink_heads));
  EXPECT_GT(s.waad_heads.abs().sum().item<double>(), 0.0);
}

// The PPO update with shared prompts accumulates the same gradient, micro-batch by micro-batch.
TEST(SharedPrompts, PolicyGradientEqualsTheUnsharedUpdate) {
  LlamaModel model = smollm2_shaped_model();
  model.set_requires_grad(true);
  UpdateInputs in;
  in.batch = grouped_batch(model.config().vocab_size);
  const int64_t N = in.batch.response_ids.size(0), R = in.batch.response_ids.size(1);
  torch::manual_seed(5);
  in.old_logprobs = -4.0 + 0.3 * torch::randn({N, R});
  in.token_advantages = torch::randn({N, R}) * in.batch.response_mask.to(torch::kFloat);
  const PolicyLoss& loss_fn = policy_losses().get("ppo_clip");
  UpdateOptions o;
  o.policy_loss = &loss_fn;
  o.loss = PolicyLossOptions{0.2, 0.28, 0.0};
  o.entropy_coef = 0.01;
  const at::Tensor rows = torch::arange(N, torch::kLong);
  for (int64_t micro : {8, 3}) {
    std::vector<at::Tensor> grads[2];
    UpdateStats stats[2];
    for (int share = 0; share < 2; ++share) {
      for (auto p : model.parameters()) p.mutable_grad() = at::Tensor();
      o.micro_batch_size = micro;
      o.share_prompts = share == 1;
      stats[share] = accumulate_policy_gradients(model, in, rows, o);
      for (const auto& p : model.parameters()) grads[share].push_back(p.grad().clone());
    }
    EXPECT_NEAR(stats[1].loss, stats[0].loss, 1e-6);
    EXPECT_LT((stats[1].logprobs - stats[0].logprobs).abs().max().item<double>(), 1e-5);
    if (micro == 8) EXPECT_LT(stats[1].positions, stats[0].positions);  // 3 prompts encoded, not 8
    for (size_t k = 0; k < grads[0].size(); ++k)
      EXPECT_LT(relative_difference(grads[1][k], grads[0][k]), 1e-5) << "micro " << micro << " param " << k;
  }
}

}  // namespace
}  // namespace anchor
