// The optimizer behind distributed.zero_stage on one process: stages 1 and 2 equal torch's AdamW
// (stage 0) bit for bit (clipping, weight decay and micro-batch accumulation included), and the
// checkpointed state moves between stages. Several ranks: tests/python/check_zero.py (mpirun).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "tests/unit/test_util.h"
#include "trainer/optim/optimizer.h"

namespace anchor {
namespace {

namespace fs = std::filesystem;

struct Params {
  std::vector<at::Tensor> tensors;
  std::vector<std::string> names;
};

Params make_params(uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  Params p;
  const std::vector<std::vector<int64_t>> shapes = {{7, 5}, {5}, {3, 4, 2}, {1}, {11}};
  for (size_t i = 0; i < shapes.size(); ++i) {
    p.tensors.push_back(torch::randn(shapes[i], gen).requires_grad_(true));
    p.names.push_back("p" + std::to_string(i));
  }
  return p;
}

// A loss with a different gradient for every element; `micro` picks the micro-batch.
at::Tensor loss_of(const Params& p, int step, int micro) {
  at::Tensor loss = torch::zeros({});
  for (size_t i = 0; i < p.tensors.size(); ++i) {
    const at::Tensor w = p.tensors[i];
    const double a = 0.3 + 0.1 * static_cast<double>(i) + 0.05 * step + 0.2 * micro;
    loss = loss + (w * a).sin().sum() * (step + 1) + w.square().sum() * 0.5;
  }
  return loss;
}

// Runs `steps` updates of two micro-batches each; returns the weights.
std::vector<at::Tensor> train(Optimizer& opt, const Params& p, int steps, double clip) {
  for (int step = 0; step < steps; ++step) {
    opt.set_learning_rate(0.05 / (step + 1));
    opt.zero_grad();
    for (int micro = 0; micro < 2; ++micro) {
      loss_of(p, step, micro).backward();
      opt.after_backward();
    }
    const double norm = opt.reduce_and_clip(clip);
    EXPECT_TRUE(std::isfinite(norm));
    opt.step();
  }
  std::vector<at::Tensor> out;
  for (const at::Tensor& t : p.tensors) out.push_back(t.detach().clone());
  return out;
}

const AdamWSettings kSettings{0.05, 0.9, 0.99, 1e-8, 0.1};

TEST(ShardedOptimizer, OneRankStagesOneAndTwoEqualTorchAdamW) {
  for (double clip : {0.0, 0.5}) {
    const Params p0 = make_params(3), p1 = make_params(3), p2 = make_params(3);
    auto o0 = make_optimizer(p0.tensors, p0.names, kSettings, 0, nullptr);
    auto o1 = make_optimizer(p1.tensors, p1.names, kSettings, 1, nullptr);
    auto o2 = make_optimizer(p2.tensors, p2.names, kSettings, 2, nullptr);
    const auto w0 = train(*o0, p0, 4, clip), w1 = train(*o1, p1, 4, clip), w2 = train(*o2, p2, 4, clip);
    for (size_t i = 0; i < w0.size(); ++i) {
      // Clipping: torch computes the norm in float from per-tensor norms, the sharded optimizer
      // in double from the slice; the factors differ in the last bits.
      const double tol = clip > 0 ? 1e-6 : 0.0;
      EXPECT_LE((w0[i] - w1[i]).abs().max().item<double>(), tol) << p0.names[i] << " clip " << clip;
      EXPECT_LE((w0[i] - w2[i]).abs().max().item<double>(), tol) << p0.names[i] << " clip " << clip;
      EXPECT_FALSE(torch::equal(w0[i], make_params(3).tensors[i])) << "did not train";
    }
    const NamedTensors s0 = o0->state_tensors(), s2 = o2->state_tensors();
    ASSERT_EQ(s0.size(), s2.size());
    for (size_t i = 0; i < s0.size(); ++i) {
      EXPECT_EQ(s0[i].first, s2[i].first);
      EXPECT_LE((s0[i].second.to(torch::kDouble) - s2[i].second.to(torch::kDouble)).abs().max().item<double>(),
                clip > 0 ? 1e-6 : 0.0)
          << s0[i].first;
    }
  }
}

TEST(ShardedOptimizer, NormIsTheGlobalL2NormAndANaNSkips) {
  const Params p = make_params(5);
  auto opt = make_optimizer(p.tensors, p.names, kSettings, 2, nullptr);
  opt->zero_grad();
  loss_of(p, 0, 0).backward();
  double expected = 0;
  for (const at::Tensor& t : p.tensors) expected += t.grad().to(torch::kDouble).square().sum().item<double>();
  opt->after_backward();
  EXPECT_NEAR(opt->reduce_and_clip(0.0), std::sqrt(expected), 1e-9 * std::sqrt(expected));
  opt->poison_gradients();
  EXPECT_TRUE(std::isnan(opt->reduce_and_clip(1.0)));
}

TEST(ShardedOptimizer, CheckpointedStateMovesBetweenStages) {
  const Params a = make_params(7);
  auto stage2 = make_optimizer(a.tensors, a.names, kSettings, 2, nullptr);
  train(*stage2, a, 3, 1.0);
  const fs::path file = fs::path(test::scratch_dir("sharded_optimizer")) / "state.safetensors";
  write_safetensors(file.string(), stage2->state_tensors());
  // Stage 0 and stage 1 from the stage-2 file continue exactly as stage 2 does.
  std::vector<std::vector<at::Tensor>> results;
  for (int stage : {0, 1, 2}) {
    const Params b = make_params(7);
    for (size_t i = 0; i < b.tensors.size(); ++i) b.tensors[i].detach().copy_(a.tensors[i].detach());
    auto opt = make_optimizer(b.tensors, b.names, kSettings, stage, nullptr);
    opt->load_state(SafetensorsFile(file.string()));
    results.push_back(train(*opt, b, 2, 0.0));
  }
  for (size_t i = 0; i < results[0].size(); ++i) {
    EXPECT_TRUE(torch::equal(results[0][i], results[1][i])) << a.names[i];
    EXPECT_TRUE(torch::equal(results[0][i], results[2][i])) << a.names[i];
  }
  // A file missing part of a parameter's state names it.
  NamedTensors partial = stage2->state_tensors();
  partial.erase(partial.begin() + 1);  // p0.exp_avg_sq
  const fs::path bad = file.parent_path() / "partial.safetensors";
  write_safetensors(bad.string(), partial);
  const Params c = make_params(7);
  auto opt = make_optimizer(c.tensors, c.names, kSettings, 1, nullptr);
  try {
    opt->load_state(SafetensorsFile(bad.string()));
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("'p0' lacks 'p0.exp_avg_sq'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace anchor
