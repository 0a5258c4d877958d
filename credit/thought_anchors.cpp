#include "credit/thought_anchors.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "credit/credit_options.h"
#include "trainer/common/error.h"

namespace anchor::credit {

VerticalScores vertical_scores(const AttentionStatistics& stats, int64_t proximity) {
  AR_CHECK(stats.block_sums.defined(), "credit: thought anchors need sentence block sums");
  const int64_t S = stats.block_sums.size(2);
  const at::Tensor sizes = stats.sentence_sizes.to(torch::kDouble);  // [B, S]
  const at::Tensor has_tokens = sizes.gt(0);
  const at::Tensor pair = sizes.unsqueeze(2) * sizes.unsqueeze(1);      // [B, S_i, S_j]
  const at::Tensor block_mean = stats.block_sums / pair.clamp_min(1.0).unsqueeze(1);  // [B, J, S_i, S_j]
  // Which (i, j) enter the vertical score of j: i >= j + P and sentence i has tokens.
  const at::Tensor i_idx = torch::arange(S, torch::kLong).unsqueeze(1), j_idx = torch::arange(S, torch::kLong).unsqueeze(0);
  const at::Tensor far = i_idx.ge(j_idx + proximity).unsqueeze(0).logical_and(has_tokens.unsqueeze(2));  // [B, S_i, S_j]
  const at::Tensor count = far.sum(1).to(torch::kDouble);                                               // [B, S_j]
  VerticalScores out;
  out.scores = (block_mean * far.unsqueeze(1).to(torch::kDouble)).sum(2) / count.clamp_min(1.0).unsqueeze(1);
  out.defined = count.gt(0).logical_and(has_tokens);
  out.scores = out.scores * out.defined.unsqueeze(1);
  return out;
}

HeadKurtosis vertical_score_kurtosis(const VerticalScores& vertical) {
  const at::Tensor w = vertical.defined.to(torch::kDouble).unsqueeze(1);  // [B, 1, S]
  const at::Tensor n = w.sum(2);                                           // [B, 1]
  const at::Tensor mean = (vertical.scores * w).sum(2) / n.clamp_min(1.0);
  const at::Tensor centered = (vertical.scores - mean.unsqueeze(2)) * w;
  const at::Tensor m2 = centered.pow(2).sum(2) / n.clamp_min(1.0);
  const at::Tensor m4 = centered.pow(4).sum(2) / n.clamp_min(1.0);
  HeadKurtosis out;
  // Zero variance (relative to the scores' scale) has no defined kurtosis.
  const at::Tensor scale = (vertical.scores.abs() * w).amax(2).pow(2);
  out.valid = n.ge(3).logical_and(m2.gt(scale * 1e-12)).logical_and(m2.gt(0));
  out.kurtosis = torch::where(out.valid, m4 / m2.clamp_min(1e-300).pow(2) - 3.0, torch::zeros_like(m2));
  return out;
}

void ReceiverHeadEstimate::update(const HeadKurtosis& k, const std::function<at::Tensor(const at::Tensor&)>* batch_sum) {
  const int64_t J = k.kurtosis.size(1);
  if (kurtosis_sum.empty()) {
    kurtosis_sum.assign(static_cast<size_t>(J), 0.0);
    traces.assign(static_cast<size_t>(J), 0);
  }
  AR_CHECK(static_cast<int64_t>(kurtosis_sum.size()) == J, "credit: the receiver-head estimate covers ",
           kurtosis_sum.size(), " heads, this model observes ", J, " (were credit.layers changed on resume?)");
  at::Tensor sum = (k.kurtosis * k.valid).sum(0), cnt = k.valid.sum(0);
  if (batch_sum != nullptr && *batch_sum) {
    const at::Tensor both = (*batch_sum)(torch::cat({sum.to(torch::kDouble), cnt.to(torch::kDouble)}));
    sum = both.slice(0, 0, J);
    cnt = both.slice(0, J, 2 * J).round().to(torch::kLong);
  }
  for (int64_t j = 0; j < J; ++j) {
    kurtosis_sum[static_cast<size_t>(j)] += sum[j].item<double>();
    traces[static_cast<size_t>(j)] += cnt[j].item<int64_t>();
  }
}

std::vector<int64_t> ReceiverHeadEstimate::top_heads(int64_t k) const {
  const int64_t J = static_cast<int64_t>(kurtosis_sum.size());
  std::vector<int64_t> order(static_cast<size_t>(J));
  std::iota(order.begin(), order.end(), 0);
  auto mean = [&](int64_t j) {
    const auto i = static_cast<size_t>(j);
    return traces[i] > 0 ? kurtosis_sum[i] / static_cast<double>(traces[i]) : -std::numeric_limits<double>::infinity();
  };
  std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return mean(x) > mean(y); });
  order.resize(static_cast<size_t>(std::min(k, J)));
  return order;
}

at::Tensor receiver_scores(const VerticalScores& vertical, const std::vector<int64_t>& heads) {
  AR_CHECK(!heads.empty(), "credit: no receiver heads");
  const at::Tensor idx = torch::tensor(heads, torch::kLong);
  const at::Tensor mean = vertical.scores.index_select(1, idx).mean(1);  // [B, S]
  return torch::where(vertical.defined, mean, torch::full_like(mean, std::numeric_limits<double>::quiet_NaN()));
}

at::Tensor top_sentence_tokens(const at::Tensor& scores, const at::Tensor& sentence_ids, double q) {
  const int64_t B = sentence_ids.size(0), R = sentence_ids.size(1);
  at::Tensor out = torch::zeros({B, R}, torch::kBool);
  const at::Tensor ids = sentence_ids.to(torch::kLong).contiguous();
  auto id = ids.accessor<int64_t, 2>();
  auto o = out.accessor<bool, 2>();
  const at::Tensor sc = scores.to(torch::kDouble).contiguous();
  auto s = sc.accessor<double, 2>();
  for (int64_t b = 0; b < B; ++b) {
    int64_t count = 0;
    for (int64_t r = 0; r < R; ++r) count = std::max(count, id[b][r] + 1);
    std::vector<int64_t> ranked;
    for (int64_t j = 0; j < count; ++j)
      if (!std::isnan(s[b][j])) ranked.push_back(j);
    std::stable_sort(ranked.begin(), ranked.end(), [&](int64_t x, int64_t y) { return s[b][x] > s[b][y]; });
    ranked.resize(static_cast<size_t>(std::min<int64_t>(top_count(q, count), static_cast<int64_t>(ranked.size()))));
    std::vector<bool> chosen(static_cast<size_t>(count), false);
    for (int64_t j : ranked) chosen[static_cast<size_t>(j)] = true;
    for (int64_t r = 0; r < R; ++r)
      if (id[b][r] >= 0 && chosen[static_cast<size_t>(id[b][r])]) o[b][r] = true;
  }
  return out;
}

}  // namespace anchor::credit
