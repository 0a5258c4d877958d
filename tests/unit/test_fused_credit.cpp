// Credit maps inside the training forward (trainer/rl/fused_credit.h): on a fully on-policy
// step the attention statistics come from the training forward itself, micro-batch by
// micro-batch. Where the ranking scope is the same, the update must equal the separate
// observed pass followed by the update with precomputed γ.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "credit/token_weights.h"
#include "tests/unit/test_util.h"
#include "trainer/algo/policy_loss.h"
#include "trainer/config/train_config.h"
#include "trainer/rl/credit_step.h"
#include "trainer/rl/fused_credit.h"
#include "trainer/rl/policy_pass.h"
#include "trainer/rl/ppo_update.h"

namespace anchor {
namespace {

LlamaModel attention_model() {
  nlohmann::json j = {{"vocab_size", 60},        {"hidden_size", 72},        {"intermediate_size", 96},
                      {"num_hidden_layers", 3},  {"num_attention_heads", 9}, {"num_key_value_heads", 3},
                      {"tie_word_embeddings", true}, {"eos_token_id", 2}};
  LlamaModel m(parse_llama_config(j, "tiny"), torch::TensorOptions().dtype(torch::kFloat), 13);
  torch::NoGradGuard no_grad;
  m.for_each_parameter([](const std::string& name, at::Tensor& t) {
    if (name.find("norm") == std::string::npos) t.mul_(4.0);
  });
  m.set_requires_grad(true);
  return m;
}

// Two groups of three samples with long enough responses for several sentences and horizons.
StepBatch grouped_batch() {
  torch::manual_seed(17);
  const int64_t N = 6, P = 5, R = 24;
  const int64_t prompt_len[] = {5, 3};
  const int64_t response_len[] = {24, 17, 20, 9, 24, 13};
  const at::Tensor prompts = torch::randint(3, 60, {2, P}, torch::kLong);
  StepBatch b;
  b.prompt_ids = torch::zeros({N, P}, torch::kLong);
  b.prompt_mask = torch::zeros({N, P}, torch::kBool);
  b.response_ids = torch::randint(3, 60, {N, R}, torch::kLong);
  b.response_mask = torch::zeros({N, R}, torch::kBool);
  for (int64_t i = 0; i < N; ++i) {
    const int64_t g = i / 3, n = prompt_len[g];
    b.prompt_ids[i].slice(0, P - n).copy_(prompts[g].slice(0, P - n));
    b.prompt_mask[i].slice(0, P - n).fill_(true);
    b.response_mask[i].slice(0, 0, response_len[i]).fill_(true);
  }
  return b;
}

TrainConfig on_policy_config(credit::CreditStrategy strategy, credit::HeadRanking ranking) {
  TrainConfig c;
  c.credit.strategy = strategy;
  c.credit.head_ranking = ranking;
  c.credit.layers = {credit::LayerMode::list, {0, 2}};
  c.credit.chunk_rows = 7;
  c.credit.horizon_low = 2;
  c.credit.horizon_high = 6;
  c.credit.window = 4;
  c.credit.token_fraction = 0.25;
  c.credit.receiver_heads = 4;
  c.credit.sentence_fraction = 0.34;
  c.credit.sign = credit::AdvantageSign::positive_only;
  return c;
}

struct UpdateResult {
  std::vector<at::Tensor> grads;
  MetricSums sums;
  credit::ReceiverHeadEstimate receivers;
  double loss = 0;
};

UpdateResult run_update(const LlamaModel& model, const StepBatch& b, const at::Tensor& token_advantages,
                        MicroBatchCredit* credit, int64_t micro) {
  const PolicyLoss& loss_fn = policy_losses().get("ppo_clip");
  UpdateOptions o;
  o.policy_loss = &loss_fn;
  o.loss = PolicyLossOptions{0.2, 0.28, 0.0};
  o.micro_batch_size = micro;
  for (auto p : model.parameters()) p.mutable_grad() = at::Tensor();
  const UpdateInputs in{b, at::Tensor(), at::Tensor(), token_advantages, credit};
  UpdateResult r;
  r.loss = accumulate_policy_gradients(model, in, torch::arange(b.response_ids.size(0), torch::kLong), o).loss;
  for (const auto& p : model.parameters()) r.grads.push_back(p.grad().clone());
  return r;
}

// The separate path of stages 3-5: one observed no-grad pass (heads ranked with
// `separate_ranking`), γ for the whole batch, then the update.
UpdateResult separate_pass(const LlamaModel& model, const StepBatch& b, TrainConfig cfg,
                           credit::HeadRanking separate_ranking, const at::Tensor& sequence,
                           const at::Tensor& sentences, credit::ReceiverHeadEstimate receivers, int64_t micro) {
  cfg.credit.head_ranking = separate_ranking;
  const PolicyPass pass = policy_pass(model, b, 1.0, micro, false, &cfg.credit, sentences);
  const bool sentence_credit = credit::strategy_uses_sentences(cfg.credit.strategy);
  const credit::CreditMap map = credit::build_credit_map(*pass.attention, cfg.credit,
                                                         sentence_credit ? &receivers : nullptr, sentences);
  credit::WeightInputs w;
  w.response_lengths = b.response_mask.sum(1);
  w.width = b.response_mask.size(1);
  w.map = &map;
  w.seed = 99;
  w.sample_ids = torch::arange(b.response_ids.size(0), torch::kLong);
  const at::Tensor gamma = credit::apply_sign_mode(credit::token_weights(w, cfg.credit), sequence, cfg.credit.sign);
  const at::Tensor valid = b.response_mask.to(torch::kFloat);
  UpdateResult r = run_update(model, b, sequence.unsqueeze(1) * valid * gamma, nullptr, micro);
  add_credit_sums(r.sums, &map, gamma, b.response_mask);
  r.receivers = receivers;
  return r;
}

UpdateResult fused_pass(const LlamaModel& model, const StepBatch& b, const TrainConfig& cfg, const at::Tensor& sequence,
                        const at::Tensor& sentences, const credit::ReceiverHeadEstimate& receivers, int64_t micro) {
  CreditState state;
  state.receivers = receivers;
  UpdateResult r;
  TrainingForwardCredit credit(
      TrainingForwardCreditInputs{&cfg, model.config().num_hidden_layers, model.config().num_attention_heads,
                                  sentences, sequence, torch::arange(b.response_ids.size(0), torch::kLong), 99},
      state, r.sums);
  const UpdateResult u =
      run_update(model, b, sequence.unsqueeze(1) * b.response_mask.to(torch::kFloat), &credit, micro);
  credit.finish(nullptr);
  r.grads = u.grads;
  r.loss = u.loss;
  r.receivers = state.receivers;
  return r;
}

void expect_equal_updates(const UpdateResult& fused, const UpdateResult& separate, const std::string& what) {
  EXPECT_NEAR(fused.loss, separate.loss, 1e-6) << what;
  for (size_t k = 0; k < fused.grads.size(); ++k) {
    const double scale = separate.grads[k].abs().max().item<double>() + 1e-12;
    EXPECT_LT((fused.grads[k] - separate.grads[k]).abs().max().item<double>() / scale, 1e-5) << what << " param " << k;
  }
  for (const char* key : {"credit/tokens", "credit/amplified", "credit/preplan", "credit/anchor", "credit/dominated"})
    EXPECT_EQ(fused.sums[key], separate.sums[key]) << what << " " << key;
  EXPECT_NEAR(fused.sums["credit/waad"], separate.sums["credit/waad"], 1e-6 * (1 + std::abs(separate.sums["credit/waad"])))
      << what;
  EXPECT_GT(separate.sums["credit/amplified"], 0.0) << what << ": the test needs amplified tokens";
}

at::Tensor sentence_ids(const StepBatch& b) {
  const int64_t R = b.response_ids.size(1);
  return (torch::arange(R, torch::kLong) / 5).repeat({b.response_ids.size(0), 1}).masked_fill(
      b.response_mask.logical_not(), -1);
}

// Per-sequence ranking does not depend on how the batch is cut: any micro-batch size gives the
// separate pass's update, for every attention strategy without sentences.
TEST(FusedCredit, SequenceRankingEqualsTheSeparatePassForAnyMicroBatch) {
  const LlamaModel model = attention_model();
  const StepBatch b = grouped_batch();
  const at::Tensor sequence = torch::tensor({1.2f, -0.4f, -0.8f, 0.9f, 0.3f, -1.2f});
  for (auto strategy : {credit::CreditStrategy::coupled, credit::CreditStrategy::global_anchor,
                        credit::CreditStrategy::local_chunk}) {
    const TrainConfig cfg = on_policy_config(strategy, credit::HeadRanking::sequence);
    ASSERT_TRUE(credit_in_training_forward(cfg, CreditState{}));
    const UpdateResult separate =
        separate_pass(model, b, cfg, credit::HeadRanking::sequence, sequence, at::Tensor(), {}, 6);
    for (int64_t micro : {6, 3, 2}) {
      expect_equal_updates(fused_pass(model, b, cfg, sequence, at::Tensor(), {}, micro), separate,
                           std::string(enum_name(strategy)) + " micro " + std::to_string(micro));
    }
  }
}

// Micro-batch ranking over one micro-batch is batch ranking over the same rows; thought anchors
// then choose receiver heads from the same estimate (a previous step's plus this batch).
TEST(FusedCredit, MicroBatchRankingOverTheWholeBatchEqualsBatchRanking) {
  const LlamaModel model = attention_model();
  const StepBatch b = grouped_batch();
  const at::Tensor sequence = torch::tensor({1.2f, -0.4f, -0.8f, 0.9f, 0.3f, -1.2f});
  const at::Tensor sentences = sentence_ids(b);
  credit::ReceiverHeadEstimate previous;  // a previous step's estimate over the 2 x 9 observed heads
  for (int64_t j = 0; j < 18; ++j) {
    previous.kurtosis_sum.push_back(0.5 * static_cast<double>((j * 7) % 5));
    previous.traces.push_back(2);
  }
  for (auto strategy : {credit::CreditStrategy::coupled, credit::CreditStrategy::thought_anchor}) {
    const TrainConfig cfg = on_policy_config(strategy, credit::HeadRanking::micro_batch);
    ASSERT_TRUE(credit_in_training_forward(cfg, CreditState{}));
    const bool sentence_credit = strategy == credit::CreditStrategy::thought_anchor;
    const at::Tensor s = sentence_credit ? sentences : at::Tensor();
    const UpdateResult separate = separate_pass(model, b, cfg, credit::HeadRanking::batch, sequence, s, previous, 6);
    const UpdateResult fused = fused_pass(model, b, cfg, sequence, s, previous, 6);
    expect_equal_updates(fused, separate, std::string(enum_name(strategy)));
    if (sentence_credit) {
      EXPECT_EQ(fused.sums["credit/anchor_sentence"], separate.sums["credit/anchor_sentence"]);
      EXPECT_EQ(fused.receivers.traces, separate.receivers.traces);  // the step joined the estimate once
      for (size_t j = 0; j < fused.receivers.kurtosis_sum.size(); ++j)
        EXPECT_NEAR(fused.receivers.kurtosis_sum[j], separate.receivers.kurtosis_sum[j], 1e-9);
    }
  }
}

// Rows of a batch's statistics (credit-stats' ranking-scope comparison) are the statistics of
// those rows observed alone.
TEST(FusedCredit, RowsOfBatchStatisticsEqualThoseRowsObservedAlone) {
  const LlamaModel model = attention_model();
  const StepBatch b = grouped_batch();
  TrainConfig cfg = on_policy_config(credit::CreditStrategy::coupled, credit::HeadRanking::micro_batch);
  torch::NoGradGuard no_grad;
  const at::Tensor rows = torch::tensor({3, 4, 5}, torch::kLong);
  const credit::AttentionStatistics all = *policy_pass(model, b, 1.0, 6, false, &cfg.credit).attention;
  const credit::AttentionStatistics alone =
      *policy_pass(model, select_rows(b, rows), 1.0, 3, false, &cfg.credit).attention;
  const credit::AttentionStatistics picked = credit::select_rows(all, rows);
  ASSERT_EQ(picked.waad_heads.sizes(), alone.waad_heads.sizes());
  EXPECT_TRUE(torch::allclose(picked.lookback_sum, alone.lookback_sum, 1e-6, 1e-9));
  EXPECT_TRUE(torch::allclose(picked.waad_heads, alone.waad_heads, 1e-6, 1e-9));
  EXPECT_TRUE(torch::allclose(picked.fai_sums, alone.fai_sums, 1e-6, 1e-9));
  EXPECT_TRUE(torch::equal(picked.response_lengths, alone.response_lengths));
  const credit::CreditMap a = credit::build_credit_map(picked, cfg.credit), c = credit::build_credit_map(alone, cfg.credit);
  EXPECT_TRUE(torch::equal(a.heads.local, c.heads.local));
  EXPECT_TRUE(torch::equal(a.anchor, c.anchor));
  EXPECT_TRUE(torch::equal(a.preplan, c.preplan));
}

// The map moves into the training forward only where that is the same algorithm.
TEST(FusedCredit, WhenTheMapIsBuiltInTheTrainingForward) {
  TrainConfig c = on_policy_config(credit::CreditStrategy::coupled, credit::HeadRanking::micro_batch);
  CreditState state;
  EXPECT_TRUE(credit_in_training_forward(c, state));
  c.credit.head_ranking = credit::HeadRanking::batch;
  EXPECT_FALSE(credit_in_training_forward(c, state));  // needs every sequence first: the separate pass
  c.credit.head_ranking = credit::HeadRanking::sequence;
  c.algo.ppo_epochs = 2;
  EXPECT_FALSE(credit_in_training_forward(c, state));
  c.algo.ppo_epochs = 1;
  c.credit.layers.mode = credit::LayerMode::automatic;
  EXPECT_FALSE(credit_in_training_forward(c, state));  // the first step observes every layer
  state.auto_layers = {0, 2};
  EXPECT_TRUE(credit_in_training_forward(c, state));
  c.algo.kl_coef = 0.1;
  c.algo.kl_in = KlPlacement::reward;
  EXPECT_FALSE(credit_in_training_forward(c, state));
  c.algo.kl_in = KlPlacement::loss;
  EXPECT_TRUE(credit_in_training_forward(c, state));
  c.credit.strategy = credit::CreditStrategy::none;
  EXPECT_FALSE(credit_in_training_forward(c, state));
}

TEST(FusedCredit, MicroBatchRankingRejectsStepsThatAreNotOnPolicy) {
  const std::string yaml =
      "model:\n  path: data/demo-model\ndata:\n  train: data/countdown/train.jsonl\n"
      "reward:\n  components:\n    - name: countdown\ncredit:\n  strategy: coupled\n  head_ranking: micro_batch\n";
  EXPECT_NO_THROW(parse_train_config(yaml, "x.yaml"));
  EXPECT_NE(test::error_of([&] { parse_train_config(yaml, "x.yaml", {"algo.mini_batches=2"}); })
                .find("credit.head_ranking: micro_batch builds the credit map inside the training forward, which "
                      "needs a fully on-policy step (algo.ppo_epochs 1 and algo.mini_batches 1), got ppo_epochs 1 "
                      "and mini_batches 2"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { parse_train_config(yaml, "x.yaml", {"algo.kl_coef=0.1", "algo.kl_in=reward"}); })
                .find("so the KL penalty cannot be in the reward"),
            std::string::npos);
}

}  // namespace
}  // namespace anchor
