// The numbers of an ablation study (docs/ablations.md), as small pure functions on held-out
// curves: per arm the mean curve with its standard error over seeds, the area under the curve and
// the steps to reach a threshold; per arm against the control, differences paired by seed with a
// seeded bootstrap confidence interval and the seeds won. Torch-free.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace anchor {

struct EvalPoint {
  int64_t step = 0;
  double accuracy = 0;
};

// What one optimizer step of a run sampled, from its metrics.jsonl: the batch after dynamic
// sampling (groups without contrast dropped), so its accuracy is not the policy's, but its
// entropy and lengths show how far the policy moved.
struct TrainPoint {
  int64_t step = 0;
  double accuracy = 0;         // share of correct samples in the kept groups
  double entropy = 0;          // mean token entropy of the sampled responses (nats)
  double response_length = 0;  // mean response tokens
  double grad_norm = 0;        // of the step's update before clipping (0 when no update ran)
  int64_t groups_kept = 0, groups_seen = 0;
};

// One finished run: its arm, seed, held-out curve (ascending steps) and, when the ledger has it,
// its training curve (ascending steps; empty if not).
struct RunCurve {
  std::string arm;
  uint64_t seed = 0;
  std::vector<EvalPoint> points;
  std::vector<TrainPoint> training;
};

// Mean held-out accuracy over the curve's span: the trapezoid area divided by (last - first step);
// a one-point curve is its value.
double curve_area(const std::vector<EvalPoint>& points);
// The first evaluated step whose accuracy is >= threshold; none if never.
std::optional<int64_t> steps_to_threshold(const std::vector<EvalPoint>& points, double threshold);

struct MeanSe {
  double mean = 0;
  double se = 0;  // sample standard deviation / sqrt(n); 0 for n < 2
  int64_t n = 0;
};
MeanSe mean_se(const std::vector<double>& values);

struct ArmSummary {
  std::string arm;
  std::vector<uint64_t> seeds;
  std::vector<int64_t> steps;  // evaluated steps common to every seed of the arm
  std::vector<MeanSe> curve;   // per step
  MeanSe final_accuracy;       // at the last common step
  MeanSe area;                 // curve_area over the common steps
  int64_t reached = 0;         // seeds that reached the threshold
  std::optional<double> mean_steps_to_threshold;  // over the seeds that reached it
};
ArmSummary summarize_arm(const std::string& arm, const std::vector<RunCurve>& runs, double threshold);

// The training side of an arm over the seeds that have a training curve: each number is first
// averaged over a window of steps per seed (the first and the last `window` steps, window =
// max(1, min(10, steps / 3))), then mean ± SE over seeds.
struct TrainingSummary {
  std::vector<uint64_t> seeds;
  int64_t window = 0;
  MeanSe entropy_first, entropy_last;
  MeanSe accuracy_first, accuracy_last;
  MeanSe length_first, length_last;
  MeanSe grad_norm;   // mean over the run's steps
  MeanSe kept_share;  // groups kept / groups seen over the whole run
  std::vector<int64_t> steps;  // steps every seed logged
  std::vector<MeanSe> entropy, accuracy;  // per step, over seeds
};
TrainingSummary summarize_training(const std::string& arm, const std::vector<RunCurve>& runs);

// Percentile bootstrap of the mean: `resamples` resamples of `values` with replacement, drawn by a
// counter-based generator from `seed` (the same interval on every machine); the interval is the
// ceil(2.5%)-th and ceil(97.5%)-th of the sorted resample means (nearest rank).
struct Interval {
  double low = 0, high = 0;
};
Interval bootstrap_mean_interval(const std::vector<double>& values, int64_t resamples, uint64_t seed);

// Two-sided sign-flip (paired permutation) test of mean 0: under "the arm makes no difference"
// each paired difference is as likely to have the other sign, so p is the share of the 2^n sign
// patterns whose |sum| is at least the observed |sum| (exact for n <= 20; above that `resamples`
// seeded random patterns, p = (hits + 1) / (resamples + 1)). It makes no normality assumption and,
// unlike the bootstrap percentile interval, stays honest with few seeds: n pairs can never give p
// below 2 / 2^n (5 seeds: 0.0625).
double sign_flip_p_value(const std::vector<double>& differences, int64_t resamples, uint64_t seed);

// arm - control for the seeds both finished, of one per-run number (final accuracy or area).
struct PairedDifference {
  std::string arm, metric;
  std::vector<uint64_t> seeds;
  std::vector<double> differences;  // per seed
  double mean = 0;
  Interval interval;
  double p_value = 1;  // sign_flip_p_value of the differences
  int64_t wins = 0, losses = 0, ties = 0;
};
// `value` maps a run to the compared number. Runs are matched by seed on the steps both arms evaluated.
PairedDifference paired_difference(const std::string& metric, const std::vector<RunCurve>& arm,
                                   const std::vector<RunCurve>& control, int64_t resamples, uint64_t seed);

}  // namespace anchor
