#include "credit/credit_map.h"

#include <torch/torch.h>

#include <optional>

namespace anchor::credit {

CreditMap build_credit_map(const AttentionStatistics& stats, const CreditOptions& o, ReceiverHeadEstimate* receivers,
                           const at::Tensor& sentence_ids, const BatchSum* batch_sum) {
  CreditMap m;
  const at::Tensor& lengths = stats.response_lengths;
  m.valid = response_mask(lengths, stats.waad_heads.size(2));
  m.head_distance = lookback_distance(stats, o.head_ranking, batch_sum);
  m.head_sink_share = head_sink_share(stats, o.head_ranking, batch_sum);
  m.sink_tokens = sink_tokens(stats);
  // With sinks excluded (5.7), sink-dominated heads leave the groups and sink tokens are never
  // preplan, anchor or introductory tokens.
  const bool exclude = stats.sinks_excluded;
  m.eligible_heads = exclude ? m.head_sink_share.le(o.sink_head_share) : torch::ones_like(m.head_distance, torch::kBool);
  const at::Tensor eligible_tokens = exclude ? m.sink_tokens.logical_not() : at::Tensor();
  m.heads = head_groups(m.head_distance, o.head_quantile, exclude ? m.eligible_heads : at::Tensor());
  m.waad = windowed_attention_distance(stats, m.heads.local);
  m.fai = future_attention_influence(stats, m.heads.global, o.horizon_low, o.horizon_high);
  m.delta = preplan_signal(m.waad, lengths);
  m.preplan = top_share(m.delta, lengths, o.token_fraction, eligible_tokens);
  m.anchor = top_share(m.fai, lengths, o.token_fraction, eligible_tokens);
  double tw = 0, td = 0;
  const bool median_w = parse_threshold(o.tau_waad, "credit.tau_waad", tw);
  const bool median_d = parse_threshold(o.tau_delta, "credit.tau_delta", td);
  const DominatedAnchors d =
      dominated_anchors(m.waad, m.delta, m.anchor, lengths, o.dominance_lookback,
                        median_w ? std::nullopt : std::optional<double>(tw), median_d ? std::nullopt : std::optional<double>(td),
                        eligible_tokens);
  m.dominated = d.dominated;
  m.intro = d.intro;

  if (stats.block_sums.defined() && sentence_ids.defined()) {
    m.sentence_ids = sentence_ids.to(torch::kLong);
    m.vertical = vertical_scores(stats, o.proximity);
    const HeadKurtosis k = vertical_score_kurtosis(m.vertical);
    ReceiverHeadEstimate local;
    ReceiverHeadEstimate& estimate = receivers ? *receivers : local;
    estimate.update(k, batch_sum);
    m.receiver_heads = estimate.top_heads(o.receiver_heads);
    m.sentence_scores = receiver_scores(m.vertical, m.receiver_heads);
    m.anchor_sentence_tokens = top_sentence_tokens(m.sentence_scores, m.sentence_ids, o.sentence_fraction);
  }
  return m;
}

}  // namespace anchor::credit
