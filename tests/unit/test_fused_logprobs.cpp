// The chunked linear + log-softmax against the plain one: values and gradients (hidden, weight;
// log-probs and entropy; temperature; chunk sizes that do not divide the rows).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "trainer/model/fused_logprobs.h"
#include "trainer/model/token_statistics.h"

namespace anchor {
namespace {

TEST(FusedLogprobs, ValuesAndGradientsEqualTheUnfusedPath) {
  torch::manual_seed(4);
  const int64_t N = 11, H = 8, V = 37;
  const at::Tensor hidden0 = torch::randn({N, H}), weight0 = torch::randn({V, H});
  const at::Tensor targets = torch::randint(0, V, {N}, torch::kLong);
  const at::Tensor w_lp = torch::randn({N}), w_ent = torch::randn({N});
  for (double temperature : {1.0, 0.7}) {
    for (bool entropy_grad : {false, true}) {
      // Reference: full logits, log-softmax, gather.
      at::Tensor h_ref = hidden0.clone().requires_grad_(true), w_ref = weight0.clone().requires_grad_(true);
      const at::Tensor logits = at::linear(h_ref, w_ref) / temperature;
      const at::Tensor lp_ref = token_logprobs(logits.unsqueeze(0), targets.unsqueeze(0)).squeeze(0);
      const at::Tensor ent_ref = token_entropy(logits.unsqueeze(0)).squeeze(0);
      ((lp_ref * w_lp).sum() + (entropy_grad ? (ent_ref * w_ent).sum() : at::zeros({}))).backward();
      for (int64_t chunk : {1, 4, 100}) {
        at::Tensor h = hidden0.clone().requires_grad_(true), w = weight0.clone().requires_grad_(true);
        const FusedTokenStatistics st = fused_token_logprobs(h, w, targets, temperature, true, entropy_grad,
                                                             torch::kFloat, chunk);
        EXPECT_LT((st.logprobs - lp_ref).abs().max().item<double>(), 1e-5);
        EXPECT_LT((st.entropy - ent_ref).abs().max().item<double>(), 1e-5);
        EXPECT_EQ(st.entropy.requires_grad(), entropy_grad);
        ((st.logprobs * w_lp).sum() + (entropy_grad ? (st.entropy * w_ent).sum() : at::zeros({}))).backward();
        // fp32 rounding differs between the two orders of summation: relative 1e-5.
        EXPECT_LT((h.grad() - h_ref.grad()).abs().max().item<double>() / h_ref.grad().abs().max().item<double>(), 1e-5)
            << "T " << temperature << " entropy_grad " << entropy_grad << " chunk " << chunk;
        EXPECT_LT((w.grad() - w_ref.grad()).abs().max().item<double>() / w_ref.grad().abs().max().item<double>(), 1e-5)
            << "T " << temperature << " entropy_grad " << entropy_grad << " chunk " << chunk;
      }
    }
  }
}

}  // namespace
}  // namespace anchor
