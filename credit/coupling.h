// How often anchor tokens follow preplan tokens, over many responses, against random
// positions (the "preplan-and-anchor rhythm" of the source paper). Two statistics:
//
//  anchor_after_preplan (ours): the share of anchor tokens t with a preplan token in
//    t-k..t (k = window), against the share expected for the same number of uniformly random
//    positions of the response; plus the lag profile: for L in -3..3, the share of anchors
//    with a preplan token at exactly t - L.
//  preplan_then_anchor (the source paper's wording): the share of preplan tokens p that
//    coincide with or are immediately followed by an anchor (an anchor at p or p + 1),
//    against random positions. The paper's full text was not reachable from this project's
//    machines, so this is the abstract's definition ("an introductory token, which is
//    immediately followed by or coincides with a semantic anchor token"), not its code.
//
// Random baselines are exact expectations (the mean over all positions of the response), not
// draws. Shares pool events over responses; standard errors treat responses as independent
// clusters (ratio estimator).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace anchor::credit {

struct CouplingStatistic {
  std::string definition;
  int64_t responses = 0, events = 0;  // responses with events; events = anchors or preplan tokens
  double share = 0, share_se = 0;     // observed
  double random = 0;                  // expected under random positions
  double excess = 0, excess_se = 0;   // share - random
  std::vector<int64_t> lags;          // anchor_after_preplan only: -3..3
  std::vector<double> lag_share, lag_random, lag_excess_se;
};

// preplan, anchor: [B, R] bool flags; response_lengths [B].
CouplingStatistic anchor_after_preplan(const at::Tensor& preplan, const at::Tensor& anchor,
                                       const at::Tensor& response_lengths, int64_t window = 3);
CouplingStatistic preplan_then_anchor(const at::Tensor& preplan, const at::Tensor& anchor,
                                      const at::Tensor& response_lengths);

}  // namespace anchor::credit
