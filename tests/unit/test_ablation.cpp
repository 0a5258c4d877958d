// Ablation studies (trainer/ablation): the spec's checks, and every statistic of the report on a
// hand-computed study of 3 arms x 3 seeds.
#include <gtest/gtest.h>

#include "tests/unit/test_util.h"
#include "trainer/ablation/ablation_report.h"
#include "trainer/ablation/ablation_spec.h"
#include "trainer/ablation/ablation_statistics.h"

namespace anchor {
namespace {

const char* kSpec = R"(
name: study
base: configs/demo.yaml
set: [rollout.prompts_per_step=4]
arms:
  - {name: none, control: true, set: [credit.strategy=none]}
  - {name: a, set: [credit.strategy=random]}
  - {name: b, set: [credit.strategy=entropy]}
seeds: [0, 1, 2]
steps: 20
eval_every: 10
threshold: 0.5
ledger: data/ablations/study
runs: runs/study
)";

TEST(AblationSpec, ReadsEveryKey) {
  const AblationSpec s = parse_ablation_spec(kSpec, "spec.yaml");
  EXPECT_EQ(s.name, "study");
  EXPECT_EQ(s.arms.size(), 3u);
  EXPECT_EQ(s.control().name, "none");
  EXPECT_EQ(s.arms[1].overrides, std::vector<std::string>{"credit.strategy=random"});
  EXPECT_EQ(s.seeds, (std::vector<uint64_t>{0, 1, 2}));
  EXPECT_EQ(s.steps, 20);
  EXPECT_EQ(s.eval_every, 10);
  EXPECT_EQ(s.bootstrap_resamples, 10000);
  EXPECT_FALSE(s.warm_start.enabled());
  EXPECT_FALSE(s.shared_start_eval);
  EXPECT_TRUE(parse_ablation_spec(std::string(kSpec) + "start_eval: shared\n", "spec.yaml").shared_start_eval);
}

TEST(AblationSpec, BadSpecsNameTheKey) {
  auto error = [](const std::string& edit_from, const std::string& edit_to) {
    std::string text = kSpec;
    const size_t at = text.find(edit_from);
    EXPECT_NE(at, std::string::npos) << edit_from;
    text.replace(at, edit_from.size(), edit_to);
    return test::error_of([&] { parse_ablation_spec(text, "spec.yaml"); });
  };
  EXPECT_NE(error("threshold: 0.5", "treshold: 0.5").find("spec.yaml: treshold: unknown key"), std::string::npos);
  EXPECT_NE(error("{name: none, control: true,", "{name: none,").find("exactly one arm must be marked control"),
            std::string::npos);
  EXPECT_NE(error("{name: a,", "{name: none,").find("arms[1].name: arm 'none' is listed twice"), std::string::npos);
  EXPECT_NE(error("seeds: [0, 1, 2]", "seeds: [0, 1, 1]").find("seeds[2]: seed 1 is listed twice"), std::string::npos);
  EXPECT_NE(error("credit.strategy=random", "train.seed=3").find("arms[1].set[0]: train.seed is set by the spec"),
            std::string::npos);
  EXPECT_NE(error("credit.strategy=entropy", "no_equals_sign").find("arms[2].set[0]: expected 'section.key=value'"),
            std::string::npos);
  EXPECT_NE(error("steps: 20", "steps: 0").find("steps: must be >= 1"), std::string::npos);
  EXPECT_NE(error("steps: 20", "steps: many").find("steps: expected a number"), std::string::npos);
  EXPECT_NE(error("steps: 20", "warm_start: {path: w, steps: 3}").find("warm_start: expected either path"),
            std::string::npos);
  EXPECT_NE(error("ledger: data/ablations/study\n", "").find("ledger: missing"), std::string::npos);
  EXPECT_NE(error("name: study", "name: a/b").find("name: use letters"), std::string::npos);
  EXPECT_NE(error("steps: 20", "start_eval: some").find("start_eval: expected each or shared"), std::string::npos);
  EXPECT_NE(error("arms:", "arms: [").find("spec.yaml:"), std::string::npos);  // YAML syntax: file and line
  // Found by fuzzing: a key that is not a name.
  EXPECT_NE(error("threshold: 0.5", "[a, b]: 0.5").find("spec.yaml: the spec: keys must be names"), std::string::npos);
  EXPECT_NE(error("{name: a,", "{[x]: 1, name: a,").find("arms[1]: keys must be names"), std::string::npos);
}

// Held-out curves at steps 0, 10, 20 (accuracy), three seeds per arm.
std::vector<RunCurve> hand_study() {
  auto run = [](const std::string& arm, uint64_t seed, double a, double b, double c) {
    return RunCurve{arm, seed, {{0, a}, {10, b}, {20, c}}, {}};
  };
  return {run("none", 0, .2, .4, .5), run("none", 1, .2, .3, .6), run("none", 2, .2, .5, .7),
          run("a", 0, .2, .5, .6),    run("a", 1, .2, .4, .8),    run("a", 2, .2, .5, .9),
          run("b", 0, .2, .3, .4),    run("b", 1, .2, .3, .5),    run("b", 2, .2, .5, .7)};
}

TEST(AblationStatistics, ThreeArmsThreeSeedsByHand) {
  const std::vector<RunCurve> runs = hand_study();
  // none: finals .5 .6 .7 -> mean .6, sample sd .1, SE .1 / sqrt(3). Areas (trapezoids / 20 steps):
  // (3 + 4.5) / 20 = .375, (2.5 + 4.5) / 20 = .35, (3.5 + 6) / 20 = .475 -> mean .4.
  const ArmSummary none = summarize_arm("none", runs, 0.5);
  EXPECT_EQ(none.steps, (std::vector<int64_t>{0, 10, 20}));
  EXPECT_NEAR(none.final_accuracy.mean, 0.6, 1e-12);
  EXPECT_NEAR(none.final_accuracy.se, 0.1 / std::sqrt(3.0), 1e-12);
  EXPECT_NEAR(none.area.mean, 0.4, 1e-12);
  EXPECT_NEAR(none.curve[1].mean, 0.4, 1e-12);
  EXPECT_NEAR(none.curve[0].se, 0.0, 1e-12);
  // Threshold .5: seeds 0 and 1 reach it at step 20, seed 2 at step 10.
  EXPECT_EQ(none.reached, 3);
  EXPECT_NEAR(*none.mean_steps_to_threshold, 50.0 / 3.0, 1e-12);
  const ArmSummary b = summarize_arm("b", runs, 0.5);
  EXPECT_EQ(b.reached, 2);  // seed 0 never reaches .5
  EXPECT_NEAR(*b.mean_steps_to_threshold, 15.0, 1e-12);

  std::vector<RunCurve> arm_a, arm_b, control;
  for (const auto& r : runs) (r.arm == "a" ? arm_a : r.arm == "b" ? arm_b : control).push_back(r);
  // a - none, final accuracy: +.1, +.2, +.2 -> mean .1667, 3 won. The bootstrap means of
  // {.1, .2, .2} are .1 with probability 1/27 (3.7% > 2.5%) and .2 with 8/27: the interval is [.1, .2].
  const PairedDifference fa = paired_difference("final_accuracy", arm_a, control, 10000, 7);
  EXPECT_EQ(fa.seeds, (std::vector<uint64_t>{0, 1, 2}));
  EXPECT_NEAR(fa.mean, 0.5 / 3, 1e-12);
  EXPECT_EQ(fa.wins, 3);
  EXPECT_EQ(fa.ties, 0);
  EXPECT_NEAR(fa.interval.low, 0.1, 1e-12);
  EXPECT_NEAR(fa.interval.high, 0.2, 1e-12);
  // b - none: -.1, -.1, 0 -> mean -.0667, 2 lost, 1 tied; interval [-.1, 0].
  const PairedDifference fb = paired_difference("final_accuracy", arm_b, control, 10000, 7);
  EXPECT_NEAR(fb.mean, -0.2 / 3, 1e-12);
  EXPECT_EQ(fb.losses, 2);
  EXPECT_EQ(fb.ties, 1);
  EXPECT_NEAR(fb.interval.low, -0.1, 1e-12);
  EXPECT_NEAR(fb.interval.high, 0.0, 1e-12);
  // Areas of a: .45, .45, .525 -> differences .075, .1, .05; interval [.05, .1].
  const PairedDifference aa = paired_difference("area", arm_a, control, 10000, 7);
  EXPECT_NEAR(aa.mean, 0.075, 1e-12);
  EXPECT_EQ(aa.wins, 3);
  EXPECT_NEAR(aa.interval.low, 0.05, 1e-12);
  EXPECT_NEAR(aa.interval.high, 0.1, 1e-12);
  // Sign-flip test. a's finals differ by .1, .2, .2: of the 8 sign patterns only all-plus and
  // all-minus reach |sum| .5 -> p = 2/8. b's by -.1, -.1, 0: |sum| .2 whenever the two -.1 share a
  // sign, 4 of 8 patterns (the 0 flips freely) -> p = 1/2. Every difference 0 -> p = 1.
  EXPECT_NEAR(fa.p_value, 0.25, 1e-12);
  EXPECT_NEAR(paired_difference("final_accuracy", arm_b, control, 10000, 7).p_value, 0.5, 1e-12);
  EXPECT_NEAR(sign_flip_p_value({0.0, 0.0}, 100, 1), 1.0, 1e-12);
  EXPECT_NEAR(sign_flip_p_value({0.1, 0.2, 0.3, 0.4, 0.5}, 100, 1), 2.0 / 32, 1e-12);  // the floor of 5 seeds
  EXPECT_NEAR(sign_flip_p_value({0.3, 0.1}, 100, 1), 0.5, 1e-12);   // sums .4 .2 -.2 -.4: two reach |.4|
  EXPECT_NEAR(sign_flip_p_value({0.3, -0.1}, 100, 1), 1.0, 1e-12);  // every pattern reaches |.2|
  // Above 20 pairs: seeded random patterns; 25 equal positive differences -> about (2/2^25 * B + 1) / (B + 1).
  const std::vector<double> many(25, 0.1);
  const double p_many = sign_flip_p_value(many, 999, 3);
  EXPECT_NEAR(p_many, 1.0 / 1000, 1e-12);
  EXPECT_EQ(p_many, sign_flip_p_value(many, 999, 3));
  // Every arm starts from the same weights: step-0 differences are exactly 0.
  const PairedDifference start = paired_difference("start_accuracy", arm_a, control, 10000, 7);
  EXPECT_EQ(start.ties, 3);
  EXPECT_EQ(start.mean, 0.0);

  // Seeded: the same interval every time; another seed draws other resamples.
  const std::vector<double> values = {0.1, -0.3, 0.25, 0.05, 0.4};
  const Interval i1 = bootstrap_mean_interval(values, 10000, 3), i2 = bootstrap_mean_interval(values, 10000, 3);
  EXPECT_EQ(i1.low, i2.low);
  EXPECT_EQ(i1.high, i2.high);
  EXPECT_LT(i1.low, 0.1);
  EXPECT_GT(i1.high, 0.1);
  // A run missing from the control is left out of the pairs.
  control.pop_back();
  EXPECT_EQ(paired_difference("final_accuracy", arm_a, control, 1000, 7).seeds, (std::vector<uint64_t>{0, 1}));
}

TEST(AblationStatistics, CurveAreaAndThresholdEdgeCases) {
  EXPECT_NEAR(curve_area({{0, 0.3}}), 0.3, 1e-12);
  EXPECT_NEAR(curve_area({{0, 0.0}, {10, 1.0}, {30, 1.0}}), (5.0 + 20.0) / 30.0, 1e-12);
  EXPECT_FALSE(steps_to_threshold({{0, 0.1}, {5, 0.2}}, 0.5).has_value());
  EXPECT_EQ(*steps_to_threshold({{0, 0.6}}, 0.5), 0);
  const MeanSe one = mean_se({0.4});
  EXPECT_EQ(one.se, 0.0);
  EXPECT_EQ(one.n, 1);
}

// Training curves of two seeds of "none" (steps 1-6; seed 1 also logged a step 7), seed 2 without one.
std::vector<RunCurve> with_training() {
  std::vector<RunCurve> runs = hand_study();
  const double e0[] = {.6, .5, .4, .3, .2, .1}, a0[] = {.1, .2, .3, .4, .5, .6};
  const double a1[] = {0, 0, 0, 0, 1, 1, 1};
  for (int64_t i = 0; i < 6; ++i)
    runs[0].training.push_back({i + 1, a0[i], e0[i], 50.0 + 2.0 * static_cast<double>(i), 1.0, 2, 4});
  for (int64_t i = 0; i < 7; ++i) runs[1].training.push_back({i + 1, a1[i], i < 6 ? 0.5 : 0.9, 40.0, 2.0, 4, 4});
  return runs;
}

TEST(AblationStatistics, TrainingSideByHand) {
  const TrainingSummary t = summarize_training("none", with_training());
  EXPECT_EQ(t.seeds, (std::vector<uint64_t>{0, 1}));  // seed 2 has no training curve
  EXPECT_EQ(t.steps, (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));  // step 7: only seed 1
  EXPECT_EQ(t.window, 2);  // max(1, min(10, 6 / 3))
  // Entropy, first two steps: (.6 + .5) / 2 = .55 and .5 -> mean .525, SE |.55 - .5| / 2 = .025.
  EXPECT_NEAR(t.entropy_first.mean, 0.525, 1e-12);
  EXPECT_NEAR(t.entropy_first.se, 0.025, 1e-12);
  // Last two: .15 and .5 (seed 1's step 7 is not a common step) -> .325 ± .175.
  EXPECT_NEAR(t.entropy_last.mean, 0.325, 1e-12);
  EXPECT_NEAR(t.entropy_last.se, 0.175, 1e-12);
  EXPECT_NEAR(t.accuracy_first.mean, 0.075, 1e-12);  // .15 and 0
  EXPECT_NEAR(t.accuracy_last.mean, 0.775, 1e-12);   // .55 and 1
  EXPECT_NEAR(t.length_first.mean, 45.5, 1e-12);     // 51 and 40
  EXPECT_NEAR(t.length_last.mean, 49.5, 1e-12);      // 59 and 40
  EXPECT_NEAR(t.kept_share.mean, 0.75, 1e-12);       // 12/24 and 24/24
  EXPECT_NEAR(t.grad_norm.mean, 1.5, 1e-12);         // 1 and 2 at every step
  EXPECT_NEAR(t.grad_norm.se, 0.5, 1e-12);
  EXPECT_NEAR(t.entropy[2].mean, 0.45, 1e-12);       // step 3: .4 and .5
  EXPECT_TRUE(summarize_training("a", with_training()).seeds.empty());
}

TEST(AblationReport, TableAndJsonCarryTheNumbers) {
  const AblationSpec spec = parse_ablation_spec(kSpec, "spec.yaml");
  const AblationReport r = make_ablation_report(spec, hand_study());
  EXPECT_EQ(r.json["control"], "none");
  ASSERT_EQ(r.json["arms"].size(), 3u);
  EXPECT_NEAR(r.json["arms"][1]["final_accuracy"]["mean"].get<double>(), 2.3 / 3, 1e-12);
  EXPECT_EQ(r.json["differences"].size(), 6u);  // start, final, area for a and b
  EXPECT_EQ(r.json["runs_done"], 9);
  EXPECT_EQ(r.markdown.rfind("9 of 9 runs done.", 0), 0u);
  EXPECT_NE(r.markdown.find("| none (control) | 3 | 0.200 ± 0.000 | 0.600 ± 0.058 | 0.400 ± 0.038 | 3/3 (step 16.7)"),
            std::string::npos)
      << r.markdown;
  EXPECT_NE(r.markdown.find("| a | 3 | 0.200 ± 0.000 | 0.767 ± 0.088 | 0.475 ± 0.025 | 3/3 (step 13.3) | +0.167 [+0.100, +0.200] | 3/3 | 0.250 |"),
            std::string::npos)
      << r.markdown;
  EXPECT_NE(r.markdown.find("| -0.067 [-0.100, +0.000] | 0/3 (1 tied) | 0.500 | -0.033 [-0.075, +0.000] | 0/3 (1 tied) |"),
            std::string::npos)
      << r.markdown;
  EXPECT_NE(r.markdown.find("| 10 | 0.400 ± 0.058 | 0.467 ± 0.033 | 0.367 ± 0.067 |"), std::string::npos) << r.markdown;
  // Each run's final accuracy, one row per seed.
  EXPECT_NE(r.markdown.find("| seed | none | a | b |\n|---|---|---|---|\n| 0 | 0.5000 | 0.6000 | 0.4000 |\n"
                            "| 1 | 0.6000 | 0.8000 | 0.5000 |\n| 2 | 0.7000 | 0.9000 | 0.7000 |\n"),
            std::string::npos)
      << r.markdown;
  // The same start in every run prints the same in every arm, whatever the number of seeds: the mean
  // of five copies of 0.1225 is a few ulps above it (0.123 unrounded), one run's is below (0.122).
  std::vector<RunCurve> shared_start;
  for (uint64_t seed = 0; seed < 5; ++seed) shared_start.push_back(RunCurve{"none", seed, {{0, .1225}, {20, .1}}, {}});
  shared_start.push_back(RunCurve{"a", 0, {{0, .1225}, {20, .1 - 1e-17}}, {}});
  const std::string shared_md = make_ablation_report(spec, shared_start).markdown;
  EXPECT_NE(shared_md.find("| none (control) | 5 | 0.122 ± 0.000 | 0.100 ± 0.000 |"), std::string::npos) << shared_md;
  EXPECT_NE(shared_md.find("| a | 1 | 0.122 | 0.100 |"), std::string::npos) << shared_md;
  EXPECT_NE(shared_md.find("| +0.000 [+0.000, +0.000] |"), std::string::npos) << shared_md;
  // An arm without runs is listed, not dropped.
  std::vector<RunCurve> partial = hand_study();
  partial.erase(partial.begin() + 6, partial.end());
  const std::string partial_md = make_ablation_report(spec, partial).markdown;
  EXPECT_NE(partial_md.find("| b | 0 | — |"), std::string::npos);
  EXPECT_NE(partial_md.find("| 2 | 0.7000 | 0.9000 | — |"), std::string::npos) << partial_md;
  // The training side appears when the ledger has training curves, and only then.
  EXPECT_EQ(r.markdown.find("Training side"), std::string::npos);
  const AblationReport t = make_ablation_report(spec, with_training());
  EXPECT_NE(t.markdown.find("| none | 2 | 0.525 ± 0.025 → 0.325 ± 0.175 | 0.075 ± 0.075 → 0.775 ± 0.225 | "
                            "45.5 ± 5.5 → 49.5 ± 9.5 | 1.500 ± 0.500 | 0.750 ± 0.250 |"),
            std::string::npos)
      << t.markdown;
  EXPECT_NE(t.markdown.find("| a | 0 | — | — | — | — | — |"), std::string::npos) << t.markdown;
  EXPECT_EQ(t.json["arms"][0]["training"]["window"], 2);
  EXPECT_EQ(t.json["arms"][0]["runs"][0]["training"].size(), 6u);
}

}  // namespace
}  // namespace anchor
