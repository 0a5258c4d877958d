#include "credit/coupling.h"

#include <torch/torch.h>

#include <cmath>
#include <functional>

namespace anchor::credit {
namespace {

// Per response: events n_b, observed hits h_b, expected random hits e_b.
struct Clusters {
  std::vector<double> n, hits, expected;
};

// Ratio Σx / Σn and its cluster standard error.
std::pair<double, double> ratio(const std::vector<double>& x, const std::vector<double>& n) {
  double sx = 0, sn = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    sx += x[i];
    sn += n[i];
  }
  if (sn <= 0) return {0.0, 0.0};
  const double r = sx / sn;
  const size_t c = x.size();
  if (c < 2) return {r, 0.0};
  double ss = 0;
  for (size_t i = 0; i < c; ++i) ss += (x[i] - r * n[i]) * (x[i] - r * n[i]);
  return {r, std::sqrt(static_cast<double>(c) / static_cast<double>(c - 1) * ss) / sn};
}

void summarise(const Clusters& c, CouplingStatistic& out, double& share, double& share_se, double& random,
               double& excess, double& excess_se) {
  std::vector<double> diff(c.n.size());
  for (size_t i = 0; i < c.n.size(); ++i) diff[i] = c.hits[i] - c.expected[i];
  std::tie(share, share_se) = ratio(c.hits, c.n);
  random = ratio(c.expected, c.n).first;
  std::tie(excess, excess_se) = ratio(diff, c.n);
  out.responses = static_cast<int64_t>(c.n.size());
}

// For every response with events: events(b) -> positions, and hit(b, t) for a position.
Clusters collect(const at::Tensor& events_flags, const at::Tensor& response_lengths,
                 const std::function<bool(int64_t b, int64_t t, int64_t len)>& hit) {
  const at::Tensor ev = events_flags.to(torch::kBool).contiguous();
  auto e = ev.accessor<bool, 2>();
  const at::Tensor lengths = response_lengths.to(torch::kLong).contiguous();
  auto len = lengths.accessor<int64_t, 1>();
  Clusters c;
  for (int64_t b = 0; b < ev.size(0); ++b) {
    const int64_t n = len[b];
    double events = 0, hits = 0, base = 0;
    for (int64_t t = 0; t < n; ++t) {
      const bool h = hit(b, t, n);
      base += h;
      if (e[b][t]) {
        events += 1;
        hits += h;
      }
    }
    if (events == 0) continue;
    c.n.push_back(events);
    c.hits.push_back(hits);
    c.expected.push_back(events * base / static_cast<double>(n));
  }
  return c;
}

}  // namespace

CouplingStatistic anchor_after_preplan(const at::Tensor& preplan, const at::Tensor& anchor,
                                       const at::Tensor& response_lengths, int64_t window) {
  const at::Tensor pre = preplan.to(torch::kBool).contiguous();
  auto p = pre.accessor<bool, 2>();
  CouplingStatistic out;
  out.definition = "anchor_after_preplan";
  const Clusters c = collect(anchor, response_lengths, [&](int64_t b, int64_t t, int64_t) {
    for (int64_t u = std::max<int64_t>(0, t - window); u <= t; ++u)
      if (p[b][u]) return true;
    return false;
  });
  summarise(c, out, out.share, out.share_se, out.random, out.excess, out.excess_se);
  out.events = 0;
  for (double n : c.n) out.events += static_cast<int64_t>(n);
  for (int64_t lag = -3; lag <= 3; ++lag) {
    const Clusters cl = collect(anchor, response_lengths, [&](int64_t b, int64_t t, int64_t len) {
      const int64_t u = t - lag;
      return u >= 0 && u < len && p[b][u];
    });
    CouplingStatistic tmp;
    double share = 0, se = 0, random = 0, excess = 0, excess_se = 0;
    summarise(cl, tmp, share, se, random, excess, excess_se);
    out.lags.push_back(lag);
    out.lag_share.push_back(share);
    out.lag_random.push_back(random);
    out.lag_excess_se.push_back(excess_se);
  }
  return out;
}

CouplingStatistic preplan_then_anchor(const at::Tensor& preplan, const at::Tensor& anchor,
                                      const at::Tensor& response_lengths) {
  const at::Tensor anc = anchor.to(torch::kBool).contiguous();
  auto a = anc.accessor<bool, 2>();
  CouplingStatistic out;
  out.definition = "preplan_then_anchor";
  const Clusters c = collect(preplan, response_lengths, [&](int64_t b, int64_t t, int64_t len) {
    return a[b][t] || (t + 1 < len && a[b][t + 1]);
  });
  summarise(c, out, out.share, out.share_se, out.random, out.excess, out.excess_se);
  for (double n : c.n) out.events += static_cast<int64_t>(n);
  return out;
}

}  // namespace anchor::credit
