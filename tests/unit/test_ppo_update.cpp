// Gradient accumulation over micro-batches equals the full-batch gradient, for every
// aggregation mode, against a naive one-forward reference of the same loss.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "trainer/algo/policy_loss.h"
#include "trainer/model/token_statistics.h"
#include "trainer/rl/ppo_update.h"

namespace anchor {
namespace {

LlamaModel small_model() {
  nlohmann::json j = {{"vocab_size", 40}, {"hidden_size", 32}, {"intermediate_size", 48}, {"num_hidden_layers", 2},
                      {"num_attention_heads", 4}, {"num_key_value_heads", 2}, {"eos_token_id", 2}};
  LlamaModel m(parse_llama_config(j, "small"), torch::TensorOptions().dtype(torch::kFloat), 5);
  m.set_requires_grad(true);
  return m;
}

UpdateInputs random_inputs(const LlamaModel& model) {
  torch::manual_seed(3);
  const int64_t N = 6, P = 5, R = 7;
  UpdateInputs in;
  in.batch.prompt_ids = torch::randint(3, 40, {N, P}, torch::kLong);
  in.batch.prompt_mask = torch::ones({N, P}, torch::kBool);
  in.batch.response_ids = torch::randint(3, 40, {N, R}, torch::kLong);
  in.batch.response_mask = torch::zeros({N, R}, torch::kBool);
  const int64_t prompt_len[] = {5, 3, 4, 5, 2, 5}, response_len[] = {7, 2, 5, 1, 6, 4};
  for (int64_t i = 0; i < N; ++i) {
    in.batch.prompt_mask[i].slice(0, 0, P - prompt_len[i]).fill_(false);
    in.batch.response_mask[i].slice(0, 0, response_len[i]).fill_(true);
  }
  in.old_logprobs = -3.7 + 0.3 * torch::randn({N, R});  // ratios spread around 1, some clipped
  in.ref_logprobs = -3.7 + 0.2 * torch::randn({N, R});
  in.token_advantages = torch::randn({N, 1}).expand({N, R}) * in.batch.response_mask.to(torch::kFloat);
  return in;
}

std::vector<at::Tensor> grads_of(const LlamaModel& model) {
  std::vector<at::Tensor> out;
  for (const auto& p : model.parameters()) out.push_back(p.grad().clone());
  return out;
}

void zero_grads(const LlamaModel& model) {
  for (auto p : model.parameters())
    if (p.grad().defined()) p.mutable_grad().zero_();
}

TEST(PpoUpdate, MicroBatchAccumulationEqualsFullBatchAndNaiveReference) {
  LlamaModel model = small_model();
  const UpdateInputs in = random_inputs(model);
  const at::Tensor rows = torch::arange(6, torch::kLong);
  for (auto mode : {LossAggregation::token_mean, LossAggregation::seq_mean_token_mean,
                    LossAggregation::seq_mean_token_sum_norm}) {
    UpdateOptions o;
    const PolicyLoss& loss_fn = policy_losses().get("ppo_clip");
    const KlEstimator& kl = kl_estimators().get("k3");
    o.policy_loss = &loss_fn;
    o.loss = PolicyLossOptions{0.2, 0.28, 3.0};
    o.aggregation = mode;
    o.norm_length = 8;
    o.temperature = 0.9;
    o.kl = &kl;
    o.kl_coef = 0.05;
    o.entropy_coef = 0.01;

    // Naive reference: one forward over the untrimmed batch, the loss written out directly.
    zero_grads(model);
    {
      at::Tensor ids = torch::cat({in.batch.prompt_ids, in.batch.response_ids}, 1);
      at::Tensor mask = torch::cat({in.batch.prompt_mask, in.batch.response_mask}, 1);
      at::Tensor logits = model.forward(padded_batch_inputs(ids, mask)).slice(1, 4, 4 + 7) / 0.9;
      at::Tensor lp = token_logprobs(logits, in.batch.response_ids);
      at::Tensor ent = token_entropy(logits);
      at::Tensor m = in.batch.response_mask.to(torch::kFloat);
      at::Tensor per_token = ppo_clip_loss(lp, in.old_logprobs, in.token_advantages, o.loss).loss +
                             0.05 * kl_k3(lp, in.ref_logprobs) - 0.01 * ent;
      at::Tensor loss;
      if (mode == LossAggregation::token_mean) loss = (per_token * m).sum() / m.sum();
      else if (mode == LossAggregation::seq_mean_token_mean) loss = ((per_token * m).sum(1) / m.sum(1)).mean();
      else loss = (per_token * m).sum() / (6.0 * 8.0);
      loss.backward();
    }
    const auto reference = grads_of(model);
    for (int64_t micro : {6, 4, 1}) {
      zero_grads(model);
      o.micro_batch_size = micro;
      const UpdateStats stats = accumulate_policy_gradients(model, in, rows, o);
      EXPECT_EQ(stats.tokens, 25);
      const auto grads = grads_of(model);
      for (size_t i = 0; i < grads.size(); ++i) {
        const double scale = reference[i].abs().max().item<double>() + 1e-12;
        EXPECT_LT((grads[i] - reference[i]).abs().max().item<double>() / scale, 1e-4)
            << enum_name(mode) << " micro " << micro << " param " << i;
      }
    }
  }
}

// Fully on-policy (no old log-probs given): the same gradient as with old log-probs from a
// separate no-grad pass of the same policy, and the training forward's log-probs are returned.
TEST(PpoUpdate, OnPolicyWithoutOldLogprobsEqualsASeparatePass) {
  LlamaModel model = small_model();
  UpdateInputs in = random_inputs(model);
  const at::Tensor rows = torch::arange(6, torch::kLong);
  UpdateOptions o;
  const PolicyLoss& loss_fn = policy_losses().get("ppo_clip");
  o.policy_loss = &loss_fn;
  o.loss = PolicyLossOptions{0.2, 0.28, 0.0};
  o.micro_batch_size = 4;
  at::Tensor separate;
  {
    torch::NoGradGuard no_grad;
    at::Tensor ids = torch::cat({in.batch.prompt_ids, in.batch.response_ids}, 1);
    at::Tensor mask = torch::cat({in.batch.prompt_mask, in.batch.response_mask}, 1);
    at::Tensor logits = model.forward(padded_batch_inputs(ids, mask)).slice(1, 4, 4 + 7);
    separate = token_logprobs(logits, in.batch.response_ids) * in.batch.response_mask.to(torch::kFloat);
  }
  in.old_logprobs = separate;
  zero_grads(model);
  const UpdateStats with_pass = accumulate_policy_gradients(model, in, rows, o);
  const auto reference = grads_of(model);
  in.old_logprobs = at::Tensor();
  zero_grads(model);
  const UpdateStats skipped = accumulate_policy_gradients(model, in, rows, o);
  const auto grads = grads_of(model);
  EXPECT_EQ(skipped.clipped_tokens, 0.0);  // ratio exactly 1
  for (size_t i = 0; i < grads.size(); ++i) {
    const double scale = reference[i].abs().max().item<double>() + 1e-12;
    EXPECT_LT((grads[i] - reference[i]).abs().max().item<double>() / scale, 1e-5) << "param " << i;
  }
  EXPECT_LT((skipped.logprobs - separate).abs().max().item<double>(), 1e-5);
  EXPECT_LT((with_pass.logprobs - separate).abs().max().item<double>(), 1e-5);
}

}  // namespace
}  // namespace anchor
