// Mixed precision (fp32 master weights, bf16 compute under autocast) and activation
// checkpointing, on CPU: LibTorch's CPU autocast runs the same code path as CUDA's.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tests/unit/test_util.h"
#include "trainer/common/device.h"
#include "trainer/model/pretrained.h"
#include "trainer/rollout/sampler.h"

namespace anchor {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
const auto kF32 = torch::TensorOptions().dtype(torch::kFloat);

at::Tensor batch_ids() {
  auto g = at::make_generator<at::CPUGeneratorImpl>(5);
  return torch::randint(3, 100, {2, 12}, g, torch::kLong);
}

// d(sum of log-softmax of the first 3 vocabulary entries)/d(parameters), in parameter order.
std::vector<at::Tensor> gradients(LlamaModel& model, const at::Tensor& ids) {
  model.set_requires_grad(true);
  for (auto& p : model.parameters()) p.mutable_grad() = at::Tensor();
  const at::Tensor logits = model.forward(padded_batch_inputs(ids, torch::ones_like(ids)));
  torch::log_softmax(logits, -1).slice(-1, 0, 3).sum().backward();
  std::vector<at::Tensor> out;
  for (auto& p : model.parameters()) out.push_back(p.grad().clone());
  return out;
}

class ActivationCheckpointing : public ::testing::TestWithParam<std::string> {};

TEST_P(ActivationCheckpointing, GivesTheSameGradients) {
  ANCHOR_REQUIRE_FIXTURES();
  LlamaModel model = load_model((fs::path(test::fixtures_dir()) / GetParam()).string(), kF32);
  const at::Tensor ids = batch_ids();
  const auto plain = gradients(model, ids);
  model.set_activation_checkpointing(true);
  const auto recomputed = gradients(model, ids);
  ASSERT_EQ(plain.size(), recomputed.size());
  const auto names = model.named_parameters();
  for (size_t i = 0; i < plain.size(); ++i) {
    ASSERT_TRUE(recomputed[i].defined()) << names[i].first;
    EXPECT_LE((plain[i] - recomputed[i]).abs().max().item<double>(), 1e-6) << names[i].first;
  }
  // The forward output itself is unchanged, and inference paths ignore the flag.
  torch::NoGradGuard no_grad;
  const at::Tensor a = model.forward(padded_batch_inputs(ids, torch::ones_like(ids)));
  model.set_activation_checkpointing(false);
  EXPECT_TRUE(torch::equal(a, model.forward(padded_batch_inputs(ids, torch::ones_like(ids)))));
}

INSTANTIATE_TEST_SUITE_P(Architectures, ActivationCheckpointing,
                         ::testing::Values("llama_gqa_tied", "llama3_rope_untied", "qwen3_tiny"));

TEST(MixedPrecision, Bf16ComputeKeepsFp32MasterWeightsAndStaysClose) {
  ANCHOR_REQUIRE_FIXTURES();
  LlamaModel model = load_model((fs::path(test::fixtures_dir()) / "qwen3_tiny").string(), kF32);
  const at::Tensor ids = batch_ids();
  const auto fp32_grads = gradients(model, ids);
  at::Tensor fp32_logits;
  {
    torch::NoGradGuard no_grad;
    fp32_logits = model.forward(padded_batch_inputs(ids, torch::ones_like(ids)));
  }
  model.set_compute_dtype(torch::kBFloat16);
  const auto bf16_grads = gradients(model, ids);
  for (const auto& p : model.parameters()) EXPECT_EQ(p.scalar_type(), torch::kFloat);  // master weights
  for (const auto& g : bf16_grads) EXPECT_EQ(g.scalar_type(), torch::kFloat);
  torch::NoGradGuard no_grad;
  const at::Tensor logits = model.forward(padded_batch_inputs(ids, torch::ones_like(ids)));
  EXPECT_EQ(logits.scalar_type(), torch::kFloat);
  const double scale = fp32_logits.abs().max().item<double>();
  const double diff = (logits - fp32_logits).abs().max().item<double>();
  EXPECT_GT(diff, 0.0) << "bf16 compute should not be bit-identical to fp32";
  EXPECT_LT(diff, 0.05 * scale);
  // Gradients point the same way (bf16 rounding aside).
  at::Tensor a = torch::cat([&] {
    std::vector<at::Tensor> v;
    for (auto& g : fp32_grads) v.push_back(g.flatten());
    return v;
  }());
  at::Tensor b = torch::cat([&] {
    std::vector<at::Tensor> v;
    for (auto& g : bf16_grads) v.push_back(g.flatten());
    return v;
  }());
  EXPECT_GT(torch::cosine_similarity(a, b, 0).item<double>(), 0.99);
  // The sampler runs in bf16 too (KV cache in bf16) and agrees with a bf16 re-scoring pass.
  EXPECT_EQ(model.make_cache(1, 4).keys[0].scalar_type(), torch::kBFloat16);
  const Tokenizer tok = Tokenizer::load((fs::path(test::fixtures_dir()) / "qwen3_tiny").string());
  SamplingParams params;
  params.temperature = 0.0;
  params.max_new_tokens = 6;
  params.stop_token_ids = {-1};
  const RolloutBatch out = generate(model, tok, {{5, 6, 7, 8}}, params);
  EXPECT_EQ(out.response_ids.size(1), 6);
}

TEST(MixedPrecision, CheckpointingUnderAutocastGivesTheSameGradients) {
  ANCHOR_REQUIRE_FIXTURES();
  LlamaModel model = load_model((fs::path(test::fixtures_dir()) / "llama_gqa_tied").string(), kF32);
  model.set_compute_dtype(torch::kBFloat16);
  const at::Tensor ids = batch_ids();
  const auto plain = gradients(model, ids);
  model.set_activation_checkpointing(true);
  const auto recomputed = gradients(model, ids);
  for (size_t i = 0; i < plain.size(); ++i)
    EXPECT_LE((plain[i] - recomputed[i]).abs().max().item<double>(), 1e-6);
}

TEST(MixedPrecision, Bf16OnACpuWithoutBf16HardwareIsRefused) {
  const std::string msg = test::error_of([] { resolve_device("cpu", "bfloat16", 0, "model"); });
  if (cpu_has_native_bf16()) {
    EXPECT_EQ(msg, "");
  } else {
    EXPECT_THAT(msg, HasSubstr("model.dtype: bfloat16 on this CPU would be several times slower than float32"));
  }
  EXPECT_EQ(resolve_device("cpu", "auto", 0, "model").dtype(), torch::kFloat);
}

}  // namespace
}  // namespace anchor
