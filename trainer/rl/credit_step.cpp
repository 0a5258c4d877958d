#include "trainer/rl/credit_step.h"

#include <torch/torch.h>

#include "credit/sentence_segmentation.h"

namespace anchor {

at::Tensor response_sentence_ids(const Tokenizer& tokenizer, const std::vector<const std::vector<int64_t>*>& responses,
                                 int64_t width, int64_t min_sentence_chars) {
  at::Tensor ids = torch::full({static_cast<int64_t>(responses.size()), width}, -1, torch::kLong);
  auto out = ids.accessor<int64_t, 2>();
  for (size_t i = 0; i < responses.size(); ++i) {
    const Decoding d = tokenizer.decode_with_spans(*responses[i]);
    const auto sentences = credit::segment_sentences(d.text, min_sentence_chars);
    const auto token_ids = credit::token_sentence_ids(d.text, d.spans, sentences);
    for (size_t t = 0; t < token_ids.size() && static_cast<int64_t>(t) < width; ++t)
      out[static_cast<int64_t>(i)][static_cast<int64_t>(t)] = token_ids[t];
  }
  return ids;
}

void add_credit_sums(MetricSums& sums, const credit::CreditMap* map, const at::Tensor& gamma, const at::Tensor& valid) {
  const at::Tensor v = valid.to(torch::kBool).cpu();
  auto count = [&](const at::Tensor& mask) { return mask.logical_and(v).sum().item<double>(); };
  auto total = [&](const at::Tensor& x) { return (x.to(torch::kDouble) * v).sum().item<double>(); };
  sums.add("credit/tokens", v.sum().item<double>());
  sums.add("credit/amplified", count(gamma.cpu().gt(1.0f)));
  sums.add("credit/kept", count(gamma.cpu().gt(0.0f)));  // forking_tokens: the share that keeps its gradient
  sums.add("credit/gamma", total(gamma.cpu()));
  if (map) {
    sums.add("credit/preplan", count(map->preplan));
    sums.add("credit/anchor", count(map->anchor));
    sums.add("credit/dominated", count(map->dominated));
    sums.add("credit/intro", count(map->intro));
    sums.add("credit/waad", total(map->waad));
    sums.add("credit/fai", total(map->fai));
    if (map->anchor_sentence_tokens.defined()) sums.add("credit/anchor_sentence", count(map->anchor_sentence_tokens));
  }
}

nlohmann::json credit_metrics(const MetricSums& sums) {
  const double n = std::max(1.0, sums["credit/tokens"]);
  nlohmann::json j;
  j["amplified_share"] = sums["credit/amplified"] / n;
  j["gamma_mean"] = sums["credit/gamma"] / n;
  j["gradient_share"] = sums["credit/kept"] / n;
  if (sums.has("credit/preplan")) {
    j["preplan_share"] = sums["credit/preplan"] / n;
    j["anchor_share"] = sums["credit/anchor"] / n;
    j["dominated_share"] = sums["credit/dominated"] / n;
    j["intro_share"] = sums["credit/intro"] / n;
    j["waad_mean"] = sums["credit/waad"] / n;
    j["fai_mean"] = sums["credit/fai"] / n;
    if (sums.has("credit/anchor_sentence")) j["anchor_sentence_share"] = sums["credit/anchor_sentence"] / n;
  }
  return j;
}

}  // namespace anchor
