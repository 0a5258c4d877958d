#include "trainer/ablation/ablation_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <initializer_list>

#include "trainer/ablation/train_point_json.h"

namespace anchor {
namespace {

// Every printed number goes through a 1e-9 grid first: the mean of five copies of 0.1225 is
// 0.12250000000000001 and would print 0.123 next to a single run's 0.122; "+ 0.0" turns a rounded
// -0.0 into 0.0, so a sign and its digits always agree.
double on_print_grid(double x) { return std::round(x * 1e9) / 1e9 + 0.0; }

std::string fixed(double x, int digits = 3) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, on_print_grid(x));
  return buf;
}

std::string signed_fixed(double x) { return (on_print_grid(x) >= 0 ? "+" : "") + fixed(x); }

std::string mean_pm(const MeanSe& m, int digits = 3) {
  return m.n == 0 ? "—" : fixed(m.mean, digits) + (m.n > 1 ? " ± " + fixed(m.se, digits) : "");
}

nlohmann::json mean_se_json(const MeanSe& m) { return {{"mean", m.mean}, {"se", m.se}, {"n", m.n}}; }

std::vector<RunCurve> runs_of(const std::vector<RunCurve>& runs, const std::string& arm) {
  std::vector<RunCurve> out;
  for (const auto& r : runs)
    if (r.arm == arm) out.push_back(r);
  return out;
}

std::string difference_cell(const PairedDifference& d) {
  if (d.differences.empty()) return "—";
  return signed_fixed(d.mean) + " [" + signed_fixed(d.interval.low) + ", " + signed_fixed(d.interval.high) + "]";
}

std::string p_cell(const PairedDifference& d) { return d.differences.empty() ? "—" : fixed(d.p_value); }

std::string won_cell(const PairedDifference& d) {
  if (d.differences.empty()) return "—";
  return std::to_string(d.wins) + "/" + std::to_string(d.differences.size()) +
         (d.ties ? " (" + std::to_string(d.ties) + " tied)" : "");
}

}  // namespace

AblationReport make_ablation_report(const AblationSpec& spec, const std::vector<RunCurve>& runs) {
  AblationReport r;
  const AblationArm& control = spec.control();
  const std::vector<RunCurve> control_runs = runs_of(runs, control.name);
  nlohmann::json& j = r.json;
  j = {{"name", spec.name},
       {"control", control.name},
       {"threshold", spec.threshold},
       {"bootstrap", {{"resamples", spec.bootstrap_resamples}, {"seed", spec.bootstrap_seed}, {"level", 0.95}}},
       {"seeds", spec.seeds},
       {"arms", nlohmann::json::array()},
       {"differences", nlohmann::json::array()}};

  int64_t done = 0;
  for (const auto& run : runs)
    for (const auto& arm : spec.arms) done += run.arm == arm.name;
  const int64_t planned = static_cast<int64_t>(spec.arms.size() * spec.seeds.size());
  j["runs_done"] = done;
  j["runs_planned"] = planned;
  std::string& md = r.markdown;
  md += std::to_string(done) + " of " + std::to_string(planned) + " runs done.\n\n";
  md += "| arm | seeds | start | final | area under curve | reached " + fixed(spec.threshold, 2) +
        " | final − " + control.name + " [95% CI] | won | p | area − " + control.name + " [95% CI] | won | p |\n";
  md += "|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  std::vector<ArmSummary> summaries;
  std::vector<TrainingSummary> trainings;
  for (const AblationArm& arm : spec.arms) {
    const std::vector<RunCurve> mine = runs_of(runs, arm.name);
    const ArmSummary s = summarize_arm(arm.name, runs, spec.threshold);
    summaries.push_back(s);
    nlohmann::json a = {{"arm", arm.name},
                        {"control", arm.control},
                        {"overrides", arm.overrides},
                        {"seeds", s.seeds},
                        {"steps", s.steps},
                        {"final_accuracy", mean_se_json(s.final_accuracy)},
                        {"area", mean_se_json(s.area)},
                        {"reached_threshold", s.reached},
                        {"mean_steps_to_threshold", s.mean_steps_to_threshold ? nlohmann::json(*s.mean_steps_to_threshold)
                                                                               : nlohmann::json(nullptr)}};
    a["curve"] = nlohmann::json::array();
    for (size_t i = 0; i < s.steps.size(); ++i)
      a["curve"].push_back({{"step", s.steps[i]}, {"mean", s.curve[i].mean}, {"se", s.curve[i].se}, {"n", s.curve[i].n}});
    a["runs"] = nlohmann::json::array();
    for (const auto& run : mine) {
      nlohmann::json points = nlohmann::json::array();
      for (const auto& p : run.points) points.push_back({{"step", p.step}, {"accuracy", p.accuracy}});
      nlohmann::json out = {{"seed", run.seed}, {"curve", points}};
      if (!run.training.empty()) out["training"] = run.training;
      a["runs"].push_back(out);
    }
    const TrainingSummary t = summarize_training(arm.name, runs);
    trainings.push_back(t);
    if (!t.seeds.empty()) {
      nlohmann::json curve = nlohmann::json::array();
      for (size_t i = 0; i < t.steps.size(); ++i)
        curve.push_back({{"step", t.steps[i]}, {"entropy", mean_se_json(t.entropy[i])}, {"accuracy", mean_se_json(t.accuracy[i])}});
      a["training"] = {{"seeds", t.seeds},
                       {"window", t.window},
                       {"entropy_first", mean_se_json(t.entropy_first)},
                       {"entropy_last", mean_se_json(t.entropy_last)},
                       {"accuracy_first", mean_se_json(t.accuracy_first)},
                       {"accuracy_last", mean_se_json(t.accuracy_last)},
                       {"response_length_first", mean_se_json(t.length_first)},
                       {"response_length_last", mean_se_json(t.length_last)},
                       {"grad_norm", mean_se_json(t.grad_norm)},
                       {"groups_kept_share", mean_se_json(t.kept_share)},
                       {"curve", curve}};
    }
    j["arms"].push_back(a);

    PairedDifference final_diff, area_diff;  // the control's stay empty: its cells read "—"
    if (!arm.control) {
      final_diff = paired_difference("final_accuracy", mine, control_runs, spec.bootstrap_resamples, spec.bootstrap_seed);
      area_diff = paired_difference("area", mine, control_runs, spec.bootstrap_resamples, spec.bootstrap_seed);
      const PairedDifference start_diff =
          paired_difference("start_accuracy", mine, control_runs, spec.bootstrap_resamples, spec.bootstrap_seed);
      for (const PairedDifference* d : std::initializer_list<const PairedDifference*>{&start_diff, &final_diff, &area_diff}) {
        j["differences"].push_back({{"arm", arm.name},
                                    {"metric", d->metric},
                                    {"seeds", d->seeds},
                                    {"per_seed", d->differences},
                                    {"mean", d->mean},
                                    {"ci95", {d->interval.low, d->interval.high}},
                                    {"p_sign_flip", d->p_value},
                                    {"wins", d->wins},
                                    {"losses", d->losses},
                                    {"ties", d->ties}});
      }
    }
    const std::string start = s.curve.empty() ? "—" : mean_pm(s.curve.front());
    const std::string reached =
        s.seeds.empty() ? "—"
                        : std::to_string(s.reached) + "/" + std::to_string(s.seeds.size()) +
                              (s.mean_steps_to_threshold ? " (step " + fixed(*s.mean_steps_to_threshold, 1) + ")" : "");
    md += "| " + arm.name + (arm.control ? " (control)" : "") + " | " + std::to_string(s.seeds.size()) + " | " + start +
          " | " + mean_pm(s.final_accuracy) + " | " + mean_pm(s.area) + " | " + reached + " | " +
          difference_cell(final_diff) + " | " + won_cell(final_diff) + " | " + p_cell(final_diff) + " | " +
          difference_cell(area_diff) + " | " + won_cell(area_diff) + " | " + p_cell(area_diff) + " |\n";
  }

  // Held-out accuracy per evaluated step (mean ± SE over seeds).
  std::vector<int64_t> steps;
  for (const auto& s : summaries)
    for (int64_t t : s.steps)
      if (std::find(steps.begin(), steps.end(), t) == steps.end()) steps.push_back(t);
  std::sort(steps.begin(), steps.end());
  if (!steps.empty()) {
    md += "\n| step |";
    for (const auto& s : summaries) md += " " + s.arm + " |";
    md += "\n|---|";
    for (size_t i = 0; i < summaries.size(); ++i) md += "---|";
    md += "\n";
    for (int64_t t : steps) {
      md += "| " + std::to_string(t) + " |";
      for (const auto& s : summaries) {
        const auto it = std::find(s.steps.begin(), s.steps.end(), t);
        md += " " + (it == s.steps.end() ? std::string("—") : mean_pm(s.curve[static_cast<size_t>(it - s.steps.begin())])) + " |";
      }
      md += "\n";
    }
  }

  // Every run's final held-out accuracy, so a reader sees the seed spread behind each mean. Four
  // digits: a held-out set of a few hundred problems gives accuracies like 0.1225.
  if (done > 0) {
    md += "\nFinal held-out accuracy of each run (its last evaluation):\n\n| seed |";
    for (const auto& arm : spec.arms) md += " " + arm.name + " |";
    md += "\n|---|";
    for (size_t i = 0; i < spec.arms.size(); ++i) md += "---|";
    md += "\n";
    for (uint64_t seed : spec.seeds) {
      md += "| " + std::to_string(seed) + " |";
      for (const auto& arm : spec.arms) {
        const auto it = std::find_if(runs.begin(), runs.end(), [&](const RunCurve& c) {
          return c.arm == arm.name && c.seed == seed && !c.points.empty();
        });
        md += " " + (it == runs.end() ? std::string("—") : fixed(it->points.back().accuracy, 4)) + " |";
      }
      md += "\n";
    }
  }

  // What the runs sampled while training (only runs whose training curve is in the ledger).
  int64_t window = 0;
  for (const auto& t : trainings) window = std::max(window, t.window);
  if (window > 0) {
    md += "\nTraining side: the batches each step sampled, after dynamic sampling dropped the groups without "
          "contrast (so their accuracy is not the policy's); per run the mean over its first and its last " +
          std::to_string(window) + " steps (gradient norm and groups: over all steps), then mean ± SE over seeds.\n\n";
    md += "| arm | seeds | token entropy, first → last | sampled accuracy, first → last | response tokens, first → last | "
          "gradient norm before clipping | groups kept / seen |\n|---|---|---|---|---|---|---|\n";
    for (size_t i = 0; i < trainings.size(); ++i) {
      const TrainingSummary& t = trainings[i];
      md += "| " + spec.arms[i].name + " | " + std::to_string(t.seeds.size()) + " | ";
      if (t.seeds.empty()) {
        md += "— | — | — | — | — |\n";
        continue;
      }
      md += mean_pm(t.entropy_first) + " → " + mean_pm(t.entropy_last) + " | " + mean_pm(t.accuracy_first) + " → " +
            mean_pm(t.accuracy_last) + " | " + mean_pm(t.length_first, 1) + " → " + mean_pm(t.length_last, 1) +
            " | " + mean_pm(t.grad_norm) + " | " + mean_pm(t.kept_share) + " |\n";
    }
  }
  return r;
}

}  // namespace anchor
