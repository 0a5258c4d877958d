#include "trainer/model/fused_logprobs.h"

#include <torch/torch.h>

#include "trainer/common/error.h"
#include "trainer/model/llama_model.h"

namespace anchor {
namespace {

int64_t rows_per_chunk(int64_t requested, int64_t vocab) {
  if (requested > 0) return requested;
  // ~16 MB of fp32 logits per chunk: temporaries stay below glibc's mmap threshold (no page
  // faults per chunk) and the vocabulary GEMM still has ~85 rows at a 49k vocabulary.
  return std::max<int64_t>(1, (int64_t{4} << 20) / std::max<int64_t>(1, vocab));
}

// Logits of rows [r0, r1) in float32, scaled by 1 / temperature.
at::Tensor chunk_logits(const at::Tensor& hidden, const at::Tensor& weight, int64_t r0, int64_t r1, double temperature) {
  at::Tensor logits = at::linear(hidden.slice(0, r0, r1), weight).to(torch::kFloat);
  return temperature == 1.0 ? logits : logits / temperature;
}

struct FusedLogprobs : public torch::autograd::Function<FusedLogprobs> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& hidden,
                                                const at::Tensor& weight, const at::Tensor& targets,
                                                double temperature, bool with_entropy, bool entropy_grad,
                                                int64_t compute_dtype, int64_t chunk) {
    const int64_t N = hidden.size(0);
    const auto f32 = hidden.options().dtype(torch::kFloat);
    at::Tensor logprobs = torch::empty({N}, f32), entropy = torch::zeros({N}, f32), lse = torch::empty({N}, f32);
    {
      const ComputeScope scope(hidden.device().type(), static_cast<at::ScalarType>(compute_dtype),
                               static_cast<at::ScalarType>(compute_dtype) != weight.scalar_type());
      for (int64_t r0 = 0; r0 < N; r0 += chunk) {
        const int64_t r1 = std::min(N, r0 + chunk);
        const at::Tensor logits = chunk_logits(hidden, weight, r0, r1, temperature);  // [c, V]
        const at::Tensor l = torch::logsumexp(logits, -1);
        lse.slice(0, r0, r1).copy_(l);
        logprobs.slice(0, r0, r1).copy_(logits.gather(-1, targets.slice(0, r0, r1).unsqueeze(-1)).squeeze(-1) - l);
        if (with_entropy) {  // H = lse - sum_j p_j l_j
          const at::Tensor p = (logits - l.unsqueeze(-1)).exp_();
          entropy.slice(0, r0, r1).copy_(l - (p * logits).sum(-1));
        }
      }
    }
    ctx->save_for_backward({hidden, weight, targets, lse, entropy});
    ctx->saved_data["temperature"] = temperature;
    ctx->saved_data["entropy_grad"] = with_entropy && entropy_grad;
    ctx->saved_data["compute_dtype"] = compute_dtype;
    ctx->saved_data["chunk"] = chunk;
    if (!(with_entropy && entropy_grad)) ctx->mark_non_differentiable({entropy});
    return {logprobs, entropy};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &hidden = saved[0], &weight = saved[1], &targets = saved[2], &lse = saved[3], &entropy = saved[4];
    const double temperature = ctx->saved_data["temperature"].toDouble();
    const bool entropy_grad = ctx->saved_data["entropy_grad"].toBool();
    const auto compute_dtype = static_cast<at::ScalarType>(ctx->saved_data["compute_dtype"].toInt());
    const int64_t chunk = ctx->saved_data["chunk"].toInt();
    const at::Tensor& grad_logprobs = grads[0];                                        // [N] or undefined
    const at::Tensor grad_entropy = entropy_grad ? grads[1] : at::Tensor();            // [N] or undefined
    const int64_t N = hidden.size(0);
    at::Tensor grad_hidden = torch::zeros_like(hidden);
    at::Tensor grad_weight = torch::zeros(weight.sizes(), weight.options().dtype(torch::kFloat));
    const ComputeScope scope(hidden.device().type(), compute_dtype, compute_dtype != weight.scalar_type());
    for (int64_t r0 = 0; r0 < N; r0 += chunk) {
      const int64_t r1 = std::min(N, r0 + chunk);
      const at::Tensor logits = chunk_logits(hidden, weight, r0, r1, temperature);     // [c, V]
      const at::Tensor l = lse.slice(0, r0, r1).unsqueeze(-1);
      const at::Tensor p = (logits - l).exp_();
      // d(objective) / d(scaled logits), built in place in the chunk's buffers:
      //   log-probs: d log p_t / d l_k = [k = t] - p_k;  entropy: d H / d l_k = -p_k (l_k - sum_j p_j l_j)
      at::Tensor g;
      if (grad_entropy.defined()) {
        const at::Tensor ge = grad_entropy.slice(0, r0, r1).unsqueeze(-1).to(torch::kFloat);
        const at::Tensor expected = l - entropy.slice(0, r0, r1).unsqueeze(-1);  // sum_j p_j l_j
        g = logits.sub(expected).mul_(p).mul_(-ge);
      }
      if (grad_logprobs.defined()) {
        const at::Tensor gl = grad_logprobs.slice(0, r0, r1).unsqueeze(-1).to(torch::kFloat);
        if (g.defined()) g.sub_(p * gl);
        else g = p.mul(-gl);
        g.scatter_add_(-1, targets.slice(0, r0, r1).unsqueeze(-1), gl);
      }
      if (!g.defined()) continue;
      if (temperature != 1.0) g.div_(temperature);
      grad_hidden.slice(0, r0, r1).copy_(at::matmul(g, weight));
      grad_weight.addmm_(g.t(), hidden.slice(0, r0, r1).to(torch::kFloat));  // in place: no [V, H] temporary
    }
    // One gradient per forward input: hidden, weight, then the non-tensor / integer inputs.
    return {grad_hidden, grad_weight.to(weight.scalar_type()), at::Tensor(), at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

FusedTokenStatistics fused_token_logprobs(const at::Tensor& hidden, const at::Tensor& weight,
                                          const at::Tensor& targets, double temperature, bool with_entropy,
                                          bool entropy_grad, at::ScalarType compute_dtype, int64_t chunk_rows) {
  AR_CHECK(hidden.dim() == 2 && weight.dim() == 2 && hidden.size(1) == weight.size(1) && targets.dim() == 1 &&
               targets.size(0) == hidden.size(0),
           "fused_token_logprobs: expected hidden [N, H], weight [V, H], targets [N]; got ", hidden.sizes(), ", ",
           weight.sizes(), ", ", targets.sizes());
  AR_CHECK(temperature > 0, "fused_token_logprobs: temperature must be positive, got ", temperature);
  const auto out = FusedLogprobs::apply(hidden, weight, targets, temperature, with_entropy, entropy_grad,
                                        static_cast<int64_t>(compute_dtype), rows_per_chunk(chunk_rows, weight.size(0)));
  FusedTokenStatistics s;
  s.logprobs = out[0];
  if (with_entropy) s.entropy = out[1];
  return s;
}

}  // namespace anchor
