#include "credit/token_weights.h"

#include <torch/torch.h>

#include "trainer/common/error.h"

namespace anchor::credit {
namespace {

at::Tensor ones(const WeightInputs& in) {
  return torch::ones({in.response_lengths.size(0), in.width}, torch::kFloat);
}

// 1 + (γ_amp - 1) * bonus, bonus in [0, 1] per token.
at::Tensor amplify(const at::Tensor& bonus, const CreditOptions& o) {
  return 1.0f + static_cast<float>(o.amplification - 1.0) * bonus.to(torch::kFloat);
}

const CreditMap& need_map(const WeightInputs& in, const char* strategy) {
  AR_CHECK(in.map != nullptr, "credit.strategy ", strategy, " needs the attention credit map");
  return *in.map;
}

at::Tensor none(const WeightInputs& in, const CreditOptions&) { return ones(in); }

// The same share of tokens as the attention strategies, chosen uniformly per response.
at::Tensor random_tokens(const WeightInputs& in, const CreditOptions& o) {
  const at::Tensor lengths = in.response_lengths.to(torch::kLong).cpu();
  at::Tensor bonus = torch::zeros({lengths.size(0), in.width}, torch::kBool);
  for (int64_t b = 0; b < lengths.size(0); ++b) {
    const int64_t len = lengths[b].item<int64_t>();
    const int64_t k = top_count(o.token_fraction, len);
    const int64_t id = in.sample_ids.defined() ? in.sample_ids[b].item<int64_t>() : b;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(in.seed ^ (static_cast<uint64_t>(id) + 1) * 0x9E3779B97F4A7C15ull);
    if (k > 0) bonus[b].index_fill_(0, torch::randperm(len, gen, torch::kLong).slice(0, 0, k), true);
  }
  return amplify(bonus, o);
}

at::Tensor entropy_tokens(const WeightInputs& in, const CreditOptions& o) {
  AR_CHECK(in.entropy.defined(), "credit.strategy entropy needs the policy's token entropies");
  return amplify(top_share(in.entropy.cpu(), in.response_lengths, o.token_fraction), o);
}

// Forking tokens (Wang et al., arXiv 2506.01939): the policy gradient only on the tokens whose
// entropy is in the top credit.forking_fraction of the step's batch (all ranks): γ = 1 there and 0
// elsewhere. The threshold is the k-th largest entropy, k = ceil(fraction x tokens); tokens tied
// with it are kept too.
at::Tensor forking_tokens(const WeightInputs& in, const CreditOptions& o) {
  AR_CHECK(in.entropy.defined(), "credit.strategy forking_tokens needs the policy's token entropies");
  const at::Tensor entropy = in.entropy.cpu().to(torch::kFloat);
  const at::Tensor valid = response_mask(in.response_lengths.cpu(), in.width);
  at::Tensor values = entropy.masked_select(valid);
  if (in.batch_gather) values = (*in.batch_gather)(values);
  if (values.numel() == 0) return torch::zeros(entropy.sizes(), torch::kFloat);
  const int64_t k = top_count(o.forking_fraction, values.numel());
  const float threshold = std::get<0>(torch::topk(values, k)).min().item<float>();
  return entropy.ge(threshold).logical_and(valid).to(torch::kFloat);
}

at::Tensor local_chunk(const WeightInputs& in, const CreditOptions& o) {
  return amplify(need_map(in, "local_chunk").preplan, o);
}

at::Tensor global_anchor(const WeightInputs& in, const CreditOptions& o) {
  return amplify(need_map(in, "global_anchor").anchor, o);
}

// Anchors that are not locally dominated get the full bonus; a dominated anchor keeps (1-α) of
// it and hands α to the token that introduced it. Terms add.
at::Tensor coupled(const WeightInputs& in, const CreditOptions& o) {
  const CreditMap& m = need_map(in, "coupled");
  const at::Tensor free_anchor = m.anchor.logical_and(m.dominated.logical_not()).to(torch::kFloat);
  const at::Tensor bonus = free_anchor + static_cast<float>(1.0 - o.coupled_alpha) * m.dominated.to(torch::kFloat) +
                           static_cast<float>(o.coupled_alpha) * m.intro.to(torch::kFloat);
  return amplify(bonus, o);
}

at::Tensor thought_anchor(const WeightInputs& in, const CreditOptions& o) {
  const CreditMap& m = need_map(in, "thought_anchor");
  AR_CHECK(m.anchor_sentence_tokens.defined(), "credit.strategy thought_anchor needs sentence statistics");
  return amplify(m.anchor_sentence_tokens, o);
}

}  // namespace

Registry<TokenWeightFn>& token_weight_strategies() {
  static Registry<TokenWeightFn> registry = [] {
    Registry<TokenWeightFn> r("credit strategy");
    r.add("none", none);
    r.add("random", random_tokens);
    r.add("entropy", entropy_tokens);
    r.add("forking_tokens", forking_tokens);
    r.add("local_chunk", local_chunk);
    r.add("global_anchor", global_anchor);
    r.add("coupled", coupled);
    r.add("thought_anchor", thought_anchor);
    return r;
  }();
  return registry;
}

at::Tensor token_weights(const WeightInputs& inputs, const CreditOptions& options) {
  at::Tensor gamma = token_weight_strategies().get(enum_name(options.strategy))(inputs, options);
  // Padding keeps γ = 1 so that γ never changes what the mask already removes.
  const at::Tensor valid = response_mask(inputs.response_lengths, inputs.width);
  return torch::where(valid, gamma, torch::ones_like(gamma));
}

at::Tensor apply_sign_mode(const at::Tensor& gamma, const at::Tensor& advantages, AdvantageSign sign) {
  if (sign == AdvantageSign::both) return gamma;
  const at::Tensor positive = advantages.to(gamma.device()).gt(0).unsqueeze(1);
  return torch::where(positive, gamma, torch::ones_like(gamma));
}

}  // namespace anchor::credit
