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

nlohmann::json credit_metrics(const credit::CreditMap* map, const at::Tensor& gamma, const at::Tensor& valid) {
  const at::Tensor v = valid.to(torch::kBool).cpu();
  const double n = std::max<double>(1.0, v.sum().item<double>());
  auto share = [&](const at::Tensor& mask) { return mask.logical_and(v).sum().item<double>() / n; };
  auto mean = [&](const at::Tensor& x) { return (x.to(torch::kDouble) * v).sum().item<double>() / n; };
  nlohmann::json j;
  j["amplified_share"] = share(gamma.cpu().gt(1.0f));
  j["gamma_mean"] = mean(gamma.cpu());
  if (map) {
    j["preplan_share"] = share(map->preplan);
    j["anchor_share"] = share(map->anchor);
    j["dominated_share"] = share(map->dominated);
    j["intro_share"] = share(map->intro);
    j["waad_mean"] = mean(map->waad);
    j["fai_mean"] = mean(map->fai);
    if (map->anchor_sentence_tokens.defined()) j["anchor_sentence_share"] = share(map->anchor_sentence_tokens);
  }
  return j;
}

}  // namespace anchor
