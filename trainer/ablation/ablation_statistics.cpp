#include "trainer/ablation/ablation_statistics.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <map>
#include <set>

#include "trainer/common/error.h"
#include "trainer/common/splitmix.h"

namespace anchor {
namespace {

// The steps every run has on its held-out curve (`&RunCurve::points`) or its training curve.
template <class Point = EvalPoint>
std::vector<int64_t> common_steps(const std::vector<const RunCurve*>& runs,
                                  std::vector<Point> RunCurve::*curve = &RunCurve::points) {
  if (runs.empty()) return {};
  std::set<int64_t> steps;
  for (const auto& p : runs[0]->*curve) steps.insert(p.step);
  for (const RunCurve* r : runs) {
    std::set<int64_t> mine, both;
    for (const auto& p : r->*curve) mine.insert(p.step);
    std::set_intersection(steps.begin(), steps.end(), mine.begin(), mine.end(), std::inserter(both, both.end()));
    steps = both;
  }
  return {steps.begin(), steps.end()};
}

std::vector<EvalPoint> on_steps(const RunCurve& run, const std::vector<int64_t>& steps) {
  std::vector<EvalPoint> out;
  for (const auto& p : run.points)
    if (std::binary_search(steps.begin(), steps.end(), p.step)) out.push_back(p);
  return out;
}

// The per-run number a paired difference compares.
double run_value(const std::string& metric, const std::vector<EvalPoint>& points) {
  AR_CHECK(!points.empty(), "ablation: a run has no evaluation on the compared steps");
  if (metric == "final_accuracy") return points.back().accuracy;
  if (metric == "area") return curve_area(points);
  if (metric == "start_accuracy") return points.front().accuracy;
  AR_FAIL("ablation: unknown metric '", metric, "' (expected final_accuracy, area or start_accuracy)");
}

}  // namespace

double curve_area(const std::vector<EvalPoint>& points) {
  AR_CHECK(!points.empty(), "ablation: an empty held-out curve has no area");
  if (points.size() == 1) return points[0].accuracy;
  double area = 0;
  for (size_t i = 1; i < points.size(); ++i)
    area += 0.5 * (points[i].accuracy + points[i - 1].accuracy) * static_cast<double>(points[i].step - points[i - 1].step);
  return area / static_cast<double>(points.back().step - points.front().step);
}

std::optional<int64_t> steps_to_threshold(const std::vector<EvalPoint>& points, double threshold) {
  for (const auto& p : points)
    if (p.accuracy >= threshold) return p.step;
  return std::nullopt;
}

MeanSe mean_se(const std::vector<double>& v) {
  MeanSe out;
  out.n = static_cast<int64_t>(v.size());
  if (v.empty()) return out;
  for (double x : v) out.mean += x;
  out.mean /= static_cast<double>(v.size());
  if (v.size() < 2) return out;
  double ss = 0;
  for (double x : v) ss += (x - out.mean) * (x - out.mean);
  out.se = std::sqrt(ss / static_cast<double>(v.size() - 1)) / std::sqrt(static_cast<double>(v.size()));
  return out;
}

ArmSummary summarize_arm(const std::string& arm, const std::vector<RunCurve>& runs, double threshold) {
  ArmSummary s;
  s.arm = arm;
  std::vector<const RunCurve*> mine;
  for (const auto& r : runs)
    if (r.arm == arm) mine.push_back(&r);
  std::sort(mine.begin(), mine.end(), [](const RunCurve* a, const RunCurve* b) { return a->seed < b->seed; });
  s.steps = common_steps(mine);
  if (mine.empty() || s.steps.empty()) return s;
  std::vector<double> finals, areas, reached_steps;
  for (const RunCurve* r : mine) {
    s.seeds.push_back(r->seed);
    const auto points = on_steps(*r, s.steps);
    finals.push_back(points.back().accuracy);
    areas.push_back(curve_area(points));
    if (const auto t = steps_to_threshold(points, threshold)) reached_steps.push_back(static_cast<double>(*t));
  }
  for (size_t i = 0; i < s.steps.size(); ++i) {
    std::vector<double> at;
    for (const RunCurve* r : mine) at.push_back(on_steps(*r, s.steps)[i].accuracy);
    s.curve.push_back(mean_se(at));
  }
  s.final_accuracy = mean_se(finals);
  s.area = mean_se(areas);
  s.reached = static_cast<int64_t>(reached_steps.size());
  if (!reached_steps.empty()) s.mean_steps_to_threshold = mean_se(reached_steps).mean;
  return s;
}

TrainingSummary summarize_training(const std::string& arm, const std::vector<RunCurve>& runs) {
  TrainingSummary s;
  std::vector<const RunCurve*> mine;
  for (const auto& r : runs)
    if (r.arm == arm && !r.training.empty()) mine.push_back(&r);
  std::sort(mine.begin(), mine.end(), [](const RunCurve* a, const RunCurve* b) { return a->seed < b->seed; });
  if (mine.empty()) return s;
  // The steps every seed logged, and each seed's points on them.
  s.steps = common_steps(mine, &RunCurve::training);
  if (s.steps.empty()) return s;
  std::vector<std::vector<const TrainPoint*>> points;  // [seed][step]
  for (const RunCurve* r : mine) {
    s.seeds.push_back(r->seed);
    points.emplace_back();
    for (const auto& p : r->training)
      if (std::binary_search(s.steps.begin(), s.steps.end(), p.step)) points.back().push_back(&p);
  }
  const auto n = static_cast<int64_t>(s.steps.size());
  s.window = std::max<int64_t>(1, std::min<int64_t>(10, n / 3));
  // Per seed, the mean of `field` over steps [begin, begin + window).
  auto window_means = [&](double TrainPoint::*field, int64_t begin) {
    std::vector<double> out;
    for (const auto& seed : points) {
      double total = 0;
      for (int64_t i = begin; i < begin + s.window; ++i) total += seed[static_cast<size_t>(i)]->*field;
      out.push_back(total / static_cast<double>(s.window));
    }
    return mean_se(out);
  };
  s.entropy_first = window_means(&TrainPoint::entropy, 0);
  s.entropy_last = window_means(&TrainPoint::entropy, n - s.window);
  s.accuracy_first = window_means(&TrainPoint::accuracy, 0);
  s.accuracy_last = window_means(&TrainPoint::accuracy, n - s.window);
  s.length_first = window_means(&TrainPoint::response_length, 0);
  s.length_last = window_means(&TrainPoint::response_length, n - s.window);
  std::vector<double> kept, grad_norm;
  for (const auto& seed : points) {
    int64_t k = 0, seen = 0;
    double norm = 0;
    for (const TrainPoint* p : seed) {
      k += p->groups_kept;
      seen += p->groups_seen;
      norm += p->grad_norm;
    }
    kept.push_back(seen > 0 ? static_cast<double>(k) / static_cast<double>(seen) : 1.0);
    grad_norm.push_back(norm / static_cast<double>(seed.size()));
  }
  s.kept_share = mean_se(kept);
  s.grad_norm = mean_se(grad_norm);
  for (size_t i = 0; i < s.steps.size(); ++i) {
    std::vector<double> entropy, accuracy;
    for (const auto& seed : points) {
      entropy.push_back(seed[i]->entropy);
      accuracy.push_back(seed[i]->accuracy);
    }
    s.entropy.push_back(mean_se(entropy));
    s.accuracy.push_back(mean_se(accuracy));
  }
  return s;
}

Interval bootstrap_mean_interval(const std::vector<double>& values, int64_t resamples, uint64_t seed) {
  AR_CHECK(!values.empty() && resamples > 0, "ablation: the bootstrap needs values and resamples");
  const uint64_t n = values.size();
  std::vector<double> means(static_cast<size_t>(resamples));
  uint64_t counter = 0;
  for (int64_t b = 0; b < resamples; ++b) {
    double total = 0;
    for (uint64_t i = 0; i < n; ++i) total += values[splitmix64_mix(seed ^ splitmix64_mix(++counter)) % n];
    means[static_cast<size_t>(b)] = total / static_cast<double>(n);
  }
  std::sort(means.begin(), means.end());
  auto rank = [&](double q) {
    const auto k = static_cast<int64_t>(std::ceil(q * static_cast<double>(resamples) - 1e-9));
    return means[static_cast<size_t>(std::clamp<int64_t>(k, 1, resamples) - 1)];
  };
  return {rank(0.025), rank(0.975)};
}

double sign_flip_p_value(const std::vector<double>& differences, int64_t resamples, uint64_t seed) {
  AR_CHECK(!differences.empty() && resamples > 0, "ablation: the sign-flip test needs differences and resamples");
  double observed = 0;
  for (double x : differences) observed += x;
  // Sums that differ only by rounding count as equal (the differences are of accuracies, ~1e-3 apart).
  const double bar = std::abs(observed) - 1e-12;
  const size_t n = differences.size();
  auto extreme = [&](auto sign_of) {
    double total = 0;
    for (size_t i = 0; i < n; ++i) total += sign_of(i) ? -differences[i] : differences[i];
    return std::abs(total) >= bar;
  };
  if (n <= 20) {
    const uint64_t patterns = uint64_t{1} << n;
    uint64_t hits = 0;
    for (uint64_t m = 0; m < patterns; ++m) hits += extreme([&](size_t i) { return (m >> i) & 1; });
    return static_cast<double>(hits) / static_cast<double>(patterns);
  }
  uint64_t hits = 0, counter = 0;
  for (int64_t b = 0; b < resamples; ++b)
    hits += extreme([&](size_t) { return splitmix64_mix(seed ^ splitmix64_mix(++counter)) & 1; });
  return static_cast<double>(hits + 1) / static_cast<double>(resamples + 1);
}

PairedDifference paired_difference(const std::string& metric, const std::vector<RunCurve>& arm,
                                   const std::vector<RunCurve>& control, int64_t resamples, uint64_t seed) {
  PairedDifference d;
  d.metric = metric;
  if (!arm.empty()) d.arm = arm[0].arm;
  std::map<uint64_t, const RunCurve*> by_seed;
  for (const auto& c : control) by_seed[c.seed] = &c;
  std::vector<std::pair<uint64_t, double>> diffs;
  for (const auto& a : arm) {
    const auto it = by_seed.find(a.seed);
    if (it == by_seed.end()) continue;
    const std::vector<int64_t> steps = common_steps({&a, it->second});
    if (steps.empty()) continue;
    diffs.emplace_back(a.seed, run_value(metric, on_steps(a, steps)) - run_value(metric, on_steps(*it->second, steps)));
  }
  std::sort(diffs.begin(), diffs.end());
  for (const auto& [s, x] : diffs) {
    d.seeds.push_back(s);
    d.differences.push_back(x);
    (x > 0 ? d.wins : x < 0 ? d.losses : d.ties) += 1;
  }
  if (d.differences.empty()) return d;
  d.mean = mean_se(d.differences).mean;
  d.interval = bootstrap_mean_interval(d.differences, resamples, seed);
  d.p_value = sign_flip_p_value(d.differences, resamples, seed);
  return d;
}

}  // namespace anchor
