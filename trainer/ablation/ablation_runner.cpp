#include "trainer/ablation/ablation_runner.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "trainer/ablation/ablation_report.h"
#include "trainer/ablation/ablation_spec.h"
#include "trainer/ablation/ablation_statistics.h"
#include "trainer/ablation/train_point_json.h"
#include "trainer/common/error.h"
#include "trainer/common/file_util.h"
#include "trainer/common/log.h"
#include "trainer/common/stop_request.h"
#include "trainer/config/train_config.h"
#include "trainer/run/memory_plan.h"
#include "trainer/run/run_memory_plan.h"

namespace anchor {
namespace {

namespace fs = std::filesystem;

// One (arm, seed) run of the study, or the shared warm start (arm == nullptr).
struct PlannedRun {
  const AblationArm* arm = nullptr;
  uint64_t seed = 0;
  std::vector<std::string> overrides;  // every --set, without model.threads
  std::string config_hash;             // of the resolved config, threads excluded
  std::string eval_signature;          // of what the held-out evaluation depends on
  int64_t steps = 0;
  fs::path run_dir, result_file, log_file, lock_file;
  std::string label() const { return arm ? str_cat(arm->name, " seed ", seed) : std::string("warm start"); }
};

struct Running {
  PlannedRun* run = nullptr;
  std::chrono::steady_clock::time_point started;
};

std::string command_output(const std::string& command) {
  std::string out;
  if (FILE* p = popen(command.c_str(), "r")) {
    char buf[256];
    while (fgets(buf, sizeof buf, p)) out += buf;
    pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

// The commit of the working directory's checkout ("+dirty" with uncommitted changes to tracked files).
std::string current_commit() {
  const std::string head = command_output("git rev-parse --short=12 HEAD 2>/dev/null");
  if (head.empty()) return "unknown";
  return head + (command_output("git status --porcelain --untracked-files=no 2>/dev/null").empty() ? "" : "+dirty");
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

TrainConfig resolved_config(const AblationSpec& spec, const PlannedRun& run) {
  try {
    return load_train_config(spec.base, run.overrides);
  } catch (const Error& e) {
    AR_FAIL(spec.source, ": ", run.label(), ": the run's config is not valid: ", e.what());
  }
}

std::string hash_without_threads(TrainConfig config) {
  config.model.threads = 0;  // how many threads a run gets does not name a different experiment
  return train_config_hash(config);
}

// Everything the held-out evaluation of the starting weights depends on: the model, the data,
// the rollout settings (generation budget, stop strings, ...), the reward and the evaluation's
// samples and temperature.
std::string eval_signature(const TrainConfig& c) {
  TrainConfig e;
  e.model = c.model;
  e.model.threads = 0;
  e.data = c.data;
  e.rollout = c.rollout;
  e.reward = c.reward;
  e.train.eval_samples = c.train.eval_samples;
  e.train.eval_temperature = c.train.eval_temperature;
  return train_config_hash(e);
}

// What a run's metrics.jsonl says: held-out accuracy by step and what each step sampled (a step
// redone after a resume counts once, its last record).
struct RunMetrics {
  std::vector<EvalPoint> curve;
  std::vector<TrainPoint> training;
  double train_seconds = 0;
  int64_t eval_problems = 0;
};

RunMetrics read_metrics(const fs::path& metrics) {
  std::map<int64_t, double> accuracy, seconds;
  std::map<int64_t, TrainPoint> training;
  RunMetrics out;
  std::ifstream in(metrics);
  std::string line;
  int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty()) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const std::exception& e) {
      AR_FAIL(metrics.string(), ":", number, ": not a JSON line: ", e.what());
    }
    const int64_t step = j.value("step", int64_t{-1});
    if (j.contains("eval") && j["eval"].contains("accuracy")) {
      accuracy[step] = j["eval"]["accuracy"].get<double>();
      out.eval_problems = j["eval"].value("samples", int64_t{0}) / std::max<int64_t>(1, j["eval"].value("k", int64_t{1}));
    }
    if (j.contains("perf")) {  // an optimizer step
      if (j["perf"].contains("step_seconds")) seconds[step] = j["perf"]["step_seconds"].get<double>();
      TrainPoint point = j.get<TrainPoint>();
      point.step = step;
      training[step] = point;
    }
  }
  for (const auto& [step, s] : seconds) out.train_seconds += s;
  for (const auto& [step, a] : accuracy) out.curve.push_back({step, a});
  for (const auto& [step, p] : training) out.training.push_back(p);
  return out;
}

// LEDGER/training/ARM/seed-S.json: the run's training curve (what each step sampled), kept with
// its result file; a separate file so that results written before it existed stay as they are.
fs::path training_file(const AblationSpec& spec, const PlannedRun& run) {
  return fs::path(spec.ledger) / "training" / run.arm->name / str_cat("seed-", run.seed, ".json");
}

void write_training(const AblationSpec& spec, const PlannedRun& run, const std::vector<TrainPoint>& training) {
  nlohmann::json j = {{"format", "anchor-rl ablation training curve"},
                      {"version", 1},
                      {"arm", run.arm->name},
                      {"seed", run.seed},
                      {"config_hash", run.config_hash},
                      {"source", (run.run_dir / "metrics.jsonl").string()}};
  // Columns: one array per TrainPoint key.
  const nlohmann::json fields = TrainPoint{};
  for (const auto& field : fields.items()) j[field.key()] = nlohmann::json::array();
  for (const TrainPoint& p : training) {
    const nlohmann::json row = p;  // named: items() of a temporary would dangle
    for (const auto& field : row.items()) j[field.key()].push_back(field.value());
  }
  const fs::path file = training_file(spec, run);
  fs::create_directories(file.parent_path());
  write_text_file_atomic(file.string(), j.dump() + "\n");
}

std::vector<TrainPoint> read_training(const AblationSpec& spec, const PlannedRun& run) {
  const fs::path file = training_file(spec, run);
  if (!fs::exists(file)) return {};
  const nlohmann::json j = read_json_file(file.string());
  const std::string where = file.string();
  AR_CHECK(j.value("arm", "") == run.arm->name && j.value("seed", uint64_t{0}) == run.seed &&
               j.value("config_hash", "") == run.config_hash,
           where, ": belongs to another run or config (arm '", j.value("arm", ""), "' seed ", j.value("seed", uint64_t{0}),
           ", hash ", j.value("config_hash", ""), "); delete it");
  std::vector<TrainPoint> out;
  try {
    const nlohmann::json fields = TrainPoint{};
    const size_t n = j.at("step").size();
    for (const auto& field : fields.items())
      AR_CHECK(j.at(field.key()).size() == n, where, ": '", field.key(), "' has ", j.at(field.key()).size(),
               " values for ", n, " steps");
    for (size_t i = 0; i < n; ++i) {
      nlohmann::json row;
      for (const auto& field : fields.items()) row[field.key()] = j[field.key()][i];
      out.push_back(row.get<TrainPoint>());
    }
  } catch (const nlohmann::json::exception& e) {
    AR_FAIL(where, ": not a training curve: ", e.what());
  }
  return out;
}

// The step of the newest complete checkpoint of a run directory, or -1.
int64_t latest_checkpoint_step(const fs::path& run_dir, fs::path* checkpoint = nullptr) {
  const fs::path latest = run_dir / "checkpoints" / "latest";
  if (!fs::exists(latest)) return -1;
  std::string name = read_text_file(latest.string());
  while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
  const size_t dash = name.rfind('-');
  if (dash == std::string::npos) return -1;
  if (checkpoint) *checkpoint = run_dir / "checkpoints" / name;
  try {
    return std::stoll(name.substr(dash + 1));
  } catch (...) {
    return -1;
  }
}

// `legacy` counts version-1 files accepted by their base and overrides (their hash predates the
// hash of non-default values).
RunCurve read_result(const AblationSpec& spec, const PlannedRun& run, int64_t* legacy = nullptr) {
  const nlohmann::json j = read_json_file(run.result_file.string());
  const std::string where = run.result_file.string();
  AR_CHECK(j.value("arm", "") == run.arm->name && j.value("seed", uint64_t{0}) == run.seed, where,
           ": the result file belongs to arm '", j.value("arm", ""), "' seed ", j.value("seed", uint64_t{0}),
           ", not to its place in the ledger");
  if (j.value("config_hash", "") != run.config_hash) {
    // Version 1 hashed every key, defaults included, so any later version that adds a config key
    // gives another hash for the same experiment: check what the file records instead.
    const bool same_recipe = j.value("base", "") == spec.base && j.contains("overrides") &&
                             j["overrides"].get<std::vector<std::string>>() == run.overrides;
    AR_CHECK(j.value("version", 1) < 2 && same_recipe, where, ": made with another config (hash ",
             j.value("config_hash", ""), ", the spec now gives ", run.config_hash,
             "): restore the spec, or delete the file to run it again");
    if (legacy) ++*legacy;
  }
  RunCurve c{run.arm->name, run.seed, {}, {}};
  AR_CHECK(j.contains("curve") && j["curve"].is_array() && !j["curve"].empty(), where, ": no held-out curve");
  for (const auto& p : j["curve"]) c.points.push_back({p.at("step").get<int64_t>(), p.at("accuracy").get<double>()});
  c.training = read_training(spec, run);
  return c;
}

// LEDGER/start_eval.json: the shared evaluation of the starting weights (start_eval: shared).
fs::path start_eval_file(const AblationSpec& spec) { return fs::path(spec.ledger) / "start_eval.json"; }

// Its accuracy, when the study shares one and it has been written (checked to fit `run`).
std::optional<double> shared_start_accuracy(const AblationSpec& spec, const PlannedRun& run) {
  if (!spec.shared_start_eval || !fs::exists(start_eval_file(spec))) return std::nullopt;
  const nlohmann::json j = read_json_file(start_eval_file(spec).string());
  AR_CHECK(j.value("eval_signature", "") == run.eval_signature, start_eval_file(spec).string(),
           ": made for another evaluation (model, data, rollout, reward or eval settings changed); delete it");
  return j.at("accuracy").get<double>();
}

void write_result(const AblationSpec& spec, const PlannedRun& run, const TrainConfig& config, const std::string& commit,
                  const nlohmann::json& warm_start, int threads, double wall_seconds) {
  const RunMetrics metrics = read_metrics(run.run_dir / "metrics.jsonl");
  std::vector<EvalPoint> curve = metrics.curve;
  std::string start_eval = "own";
  if (spec.shared_start_eval) {
    const fs::path shared = start_eval_file(spec);
    if (curve.empty() || curve.front().step != 0) {  // the run skipped it: the shared one
      const std::optional<double> accuracy = shared_start_accuracy(spec, run);
      AR_CHECK(accuracy.has_value(), run.label(), " skipped its start evaluation, but ", shared.string(), " is missing");
      curve.insert(curve.begin(), EvalPoint{0, *accuracy});
      start_eval = "shared";
    } else if (!fs::exists(shared)) {  // the first run to evaluate its start shares it
      fs::create_directories(shared.parent_path());
      write_text_file_atomic(shared.string(), nlohmann::json{{"eval_signature", run.eval_signature},
                                                             {"accuracy", curve.front().accuracy},
                                                             {"from", run.label()},
                                                             {"threads", threads},
                                                             {"commit", commit}}
                                                      .dump(2) + "\n");
    }
  }
  nlohmann::json points = nlohmann::json::array();
  for (const auto& p : curve) points.push_back({{"step", p.step}, {"accuracy", p.accuracy}});
  const nlohmann::json result = {{"format", "anchor-rl ablation result"},
                                 {"version", 2},  // 2: config_hash covers the values that differ from the defaults
                                 {"study", spec.name},
                                 {"arm", run.arm->name},
                                 {"seed", run.seed},
                                 {"model", config.model.path},
                                 {"base", spec.base},
                                 {"overrides", run.overrides},
                                 {"config_hash", run.config_hash},
                                 {"commit", commit},
                                 {"warm_start", warm_start},
                                 {"steps", run.steps},
                                 {"eval_problems", metrics.eval_problems},
                                 {"start_eval", start_eval},
                                 {"curve", points},
                                 {"threads", threads},
                                 {"train_seconds", metrics.train_seconds},
                                 {"wall_seconds_last_launch", wall_seconds},
                                 {"finished_at", utc_now()}};
  write_training(spec, run, metrics.training);  // first: the result file marks the run done
  fs::create_directories(run.result_file.parent_path());
  write_text_file_atomic(run.result_file.string(), result.dump(2) + "\n");
}

// A run is finished when its metrics hold the held-out evaluation of its last step.
bool run_finished(const PlannedRun& run) {
  const fs::path metrics = run.run_dir / "metrics.jsonl";
  if (!fs::exists(metrics)) return false;
  const auto curve = read_metrics(metrics).curve;
  if (!run.arm) return latest_checkpoint_step(run.run_dir) == run.steps;  // the warm start has no evaluation
  return !curve.empty() && curve.back().step == run.steps;
}

// Locks the run for this process and the child it starts; -1 when another process holds it.
int lock_run(const PlannedRun& run) {
  fs::create_directories(run.lock_file.parent_path());
  const int fd = ::open(run.lock_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  AR_CHECK(fd >= 0, run.lock_file.string(), ": cannot open the run's lock file: ", std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Starts `executable args...` with stdout and stderr appended to `log`; the child keeps `lock_fd`
// (its run's lock) and gets SIGTERM if this process dies.
pid_t launch(const std::string& executable, const std::vector<std::string>& args, const fs::path& log, int lock_fd) {
  fs::create_directories(log.parent_path());
  const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  AR_CHECK(log_fd >= 0, log.string(), ": cannot open for appending: ", std::strerror(errno));
  std::vector<std::string> all = {executable};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  AR_CHECK(pid >= 0, "ablate: fork failed: ", std::strerror(errno));
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(1);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    if (lock_fd >= 0) ::fcntl(lock_fd, F_SETFD, ::fcntl(lock_fd, F_GETFD) & ~FD_CLOEXEC);
    ::execv(executable.c_str(), argv.data());
    ::dprintf(2, "anchor-rl ablate: cannot run %s: %s\n", executable.c_str(), std::strerror(errno));
    ::_exit(127);
  }
  ::close(log_fd);
  return pid;
}

std::string tail_of(const fs::path& file, size_t lines) {
  std::ifstream in(file);
  std::vector<std::string> all;
  std::string line;
  while (std::getline(in, line)) all.push_back(line);
  std::string out;
  for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) out += "\n    " + all[i];
  return out;
}

// The arguments of `anchor-rl train` for a run, resuming it when it has a checkpoint.
std::vector<std::string> train_args(const AblationSpec& spec, const PlannedRun& run, int threads,
                                    const std::string& init_from) {
  std::vector<std::string> args = {"train", spec.base};
  for (const auto& o : run.overrides) args.insert(args.end(), {"--set", o});
  args.insert(args.end(), {"--set", str_cat("model.threads=", threads), "--run-dir", run.run_dir.string()});
  if (latest_checkpoint_step(run.run_dir) >= 0) {
    args.insert(args.end(), {"--resume", "latest"});
    return args;
  }
  if (!init_from.empty()) args.insert(args.end(), {"--init-from", init_from});
  if (run.arm && shared_start_accuracy(spec, run).has_value()) args.push_back("--skip-start-eval");
  return args;
}

// A run directory the child will write: resumed as it is when it has a checkpoint and was
// started with the same settings; moved aside when it has none (nothing is deleted).
void prepare_run_dir(const PlannedRun& run) {
  if (!fs::exists(run.run_dir)) return;
  if (latest_checkpoint_step(run.run_dir) < 0) {
    const fs::path aside = run.run_dir.string() + ".incomplete-" + std::to_string(std::time(nullptr));
    log::warn(str_cat(run.label(), ": ", run.run_dir.string(), " has no checkpoint; moved to ", aside.string(),
                      " and started again"));
    fs::rename(run.run_dir, aside);
    return;
  }
  const fs::path run_json = run.run_dir / "run.json";
  if (!fs::exists(run_json)) return;
  std::vector<std::string> before;
  for (const auto& o : read_json_file(run_json.string()).value("overrides", std::vector<std::string>{}))
    if (o.rfind("model.threads=", 0) != 0) before.push_back(o);
  AR_CHECK(before == run.overrides, run.run_dir.string(),
           " was started with other settings than the spec now gives (its run.json lists the overrides); move it "
           "away or restore the spec");
}

// --parallel N: the runs at once share one machine's memory (or one GPU), but each checks its
// own memory plan only when it starts, and the first N all start to an empty machine. So the
// study checks first: N x the largest planned peak among the runs still to do must fit in what
// the first run's device has now (CPU: MemAvailable; CUDA: the GPU's memory). "" when it fits,
// else the message naming the arm, the numbers and the largest --parallel that fits.
std::string parallel_memory_refusal(const AblationSpec& spec, const std::vector<PlannedRun*>& pending, int parallel,
                                    const std::string& init_from) {
  if (parallel <= 1 || pending.empty()) return "";
  int64_t peak = 0, device_bytes = 0;
  std::string device_name, which;
  std::set<std::string> planned;  // config hashes without the seed (the seeds of an arm share one plan)
  for (const PlannedRun* r : pending) {
    TrainConfig config = resolved_config(spec, *r);
    config.train.seed = 0;
    const std::string key = hash_without_threads(config);
    if (!planned.insert(key).second) continue;
    // The shape comes from the weights the runs start from: the shared warm start's, or
    // model.path's (a warm start still to run, or a resumed run, has the base model's shape).
    const std::string from = init_from.empty() ? config.model.path : init_from;
    const MemoryPlanInputs inputs = run_memory_plan_inputs(config, ConfigUse::rl, from, PlanRequest{});
    const MemoryPlan plan = plan_memory(inputs);
    if (plan.peak() > peak) {
      peak = plan.peak();
      which = str_cat(r->arm ? r->arm->name : std::string("the warm start"), " (", plan.peak_phase().name, " phase)");
    }
    if (device_bytes == 0) {
      device_bytes = plan.device_bytes;
      device_name = plan.device_name;
    }
  }
  if (device_bytes <= 0 || parallel * peak <= device_bytes) return "";
  const int64_t fits = std::max<int64_t>(1, device_bytes / std::max<int64_t>(1, peak));
  return str_cat("ablate --parallel ", parallel, ": the memory plan of ", which, " peaks at ", format_bytes(peak),
                 ", so ", parallel, " runs at once need ", format_bytes(parallel * peak), ", more than the ",
                 format_bytes(device_bytes), " ", device_name, ". Use --parallel ", fits,
                 fits == 1 ? " (one run at a time)" : "", " or free memory first; `anchor-rl plan ", spec.base,
                 "` shows one run's plan item by item");
}

std::string find_python(const AblateOptions& o) {
  if (!o.python.empty()) return o.python;
  if (const char* env = std::getenv("ANCHOR_PYTHON"); env && *env) return env;
  if (const char* home = std::getenv("HOME")) {
    const fs::path venv = fs::path(home) / ".cache/anchor-rl/venv/bin/python";
    if (fs::exists(venv)) return venv.string();
  }
  return "/usr/bin/python3";
}

void write_report(const AblateOptions& o, const AblationSpec& spec, const std::vector<RunCurve>& curves) {
  const AblationReport report = make_ablation_report(spec, curves);
  const fs::path ledger(spec.ledger);
  fs::create_directories(ledger);
  write_text_file_atomic((ledger / "report.json").string(), report.json.dump(2) + "\n");
  write_text_file_atomic((ledger / "report.md").string(),
                         str_cat("# ", spec.name, "\n\nHeld-out accuracy per arm (mean ± SE over seeds); differences "
                                 "against the control paired by seed, with a ",
                                 spec.bootstrap_resamples, "-resample bootstrap 95% interval (seed ",
                                 spec.bootstrap_seed, ") and the two-sided sign-flip test's p (exact; n seeds cannot "
                                 "go below 2 / 2^n). Written by `anchor-rl ablate ", o.spec_path, "`.\n\n",
                                 report.markdown));
  const fs::path script = fs::path(ANCHOR_SOURCE_DIR) / "scripts/plots/plot_ablation.py";
  const fs::path png = ledger / "curves.png";
  const std::string python = find_python(o);
  const pid_t pid = launch(python, {script.string(), (ledger / "report.json").string(), png.string()},
                           ledger / "plot.log", -1);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    fs::remove(ledger / "plot.log");
    log::info(str_cat("ablate: report ", (ledger / "report.md").string(), ", ", (ledger / "report.json").string(),
                      ", ", png.string()));
  } else {
    log::warn(str_cat("ablate: report ", (ledger / "report.md").string(), " and report.json written; curves.png not (",
                      python, " ", script.string(), " failed, see ", (ledger / "plot.log").string(),
                      "; it needs matplotlib: scripts/setup.sh installs it)"));
  }
}

}  // namespace

int run_ablation(const AblateOptions& o) {
  const AblationSpec spec = load_ablation_spec(o.spec_path);
  AR_CHECK(o.parallel >= 1, "--parallel: must be >= 1");
  const fs::path runs_root(spec.runs), ledger(spec.ledger);

  // The plan: every (arm, seed), its overrides and config hash (which also checks every config).
  // Seed by seed (every arm of the first seed first), so that a partial study stays paired.
  std::vector<PlannedRun> plan;
  for (uint64_t seed : spec.seeds) {
    for (const AblationArm& arm : spec.arms) {
      PlannedRun r;
      r.arm = &arm;
      r.seed = seed;
      r.overrides = spec.overrides;
      r.overrides.insert(r.overrides.end(), arm.overrides.begin(), arm.overrides.end());
      r.overrides.push_back(str_cat("train.seed=", seed));
      if (spec.steps > 0) r.overrides.push_back(str_cat("train.steps=", spec.steps));
      if (spec.eval_every > 0) r.overrides.push_back(str_cat("train.eval_every=", spec.eval_every));
      const TrainConfig config = resolved_config(spec, r);
      AR_CHECK(!config.data.eval.empty(), spec.source, ": ", r.label(),
               ": the runs need a held-out set (data.eval in the base config or an override)");
      r.config_hash = hash_without_threads(config);
      r.eval_signature = eval_signature(config);
      r.steps = config.train.steps;
      if (spec.shared_start_eval) {
        AR_CHECK(config.train.eval_temperature == 0, spec.source, ": start_eval: shared needs a greedy evaluation ",
                 "(train.eval_temperature 0; a sampled one depends on the seed), ", r.label(), " has ",
                 config.train.eval_temperature);
        AR_CHECK(plan.empty() || plan.front().eval_signature == r.eval_signature, spec.source,
                 ": start_eval: shared needs the same evaluation in every run, but ", r.label(),
                 " changes the model, data, rollout, reward or eval settings");
      }
      const std::string leaf = str_cat("seed-", seed);
      r.run_dir = runs_root / arm.name / leaf;
      r.log_file = runs_root / arm.name / (leaf + ".log");
      r.lock_file = runs_root / arm.name / (leaf + ".lock");
      r.result_file = ledger / "runs" / arm.name / (leaf + ".json");
      plan.push_back(r);
    }
  }

  std::vector<RunCurve> curves;
  std::vector<PlannedRun*> pending;
  int64_t backfilled = 0, legacy = 0;
  for (PlannedRun& r : plan) {
    if (!fs::exists(r.result_file)) {
      pending.push_back(&r);
      continue;
    }
    // A result written before the ledger kept training curves: take it from the run's metrics
    // when its directory is still here and complete.
    const fs::path metrics = r.run_dir / "metrics.jsonl";
    if (!fs::exists(training_file(spec, r)) && fs::exists(metrics)) {
      const RunMetrics m = read_metrics(metrics);
      if (!m.training.empty() && m.training.back().step == r.steps) {
        write_training(spec, r, m.training);
        ++backfilled;
      }
    }
    curves.push_back(read_result(spec, r, &legacy));
  }
  if (legacy > 0)
    log::warn(str_cat("ablate: ", legacy, " result files are version 1 (their config hash counted every key, so a "
                      "newer anchor-rl gives another one): accepted because their base and overrides are the spec's; "
                      "the base file's content as it was then cannot be checked"));
  if (backfilled > 0)
    log::info(str_cat("ablate: training curves of ", backfilled, " finished runs added to the ledger from their run directories"));
  log::info(str_cat("ablate ", spec.name, ": ", spec.arms.size(), " arms x ", spec.seeds.size(), " seeds; ",
                    plan.size() - pending.size(), " runs done (ledger ", ledger.string(), "), ", pending.size(),
                    " to run"));
  if (o.report_only || pending.empty()) {
    write_report(o, spec, curves);  // a partial study's report covers the runs done so far
    return 0;
  }

  // The shared warm start, first, when a pending run needs it.
  PlannedRun warm;
  std::string init_from;
  nlohmann::json warm_info = nullptr;
  if (!spec.warm_start.path.empty()) {
    AR_CHECK(fs::is_directory(spec.warm_start.path), spec.source, ": warm_start.path: ", spec.warm_start.path,
             " is not a directory");
    init_from = spec.warm_start.path;
    warm_info = {{"path", init_from}};
  } else if (spec.warm_start.steps > 0) {
    warm.seed = spec.warm_start.seed;
    warm.overrides = spec.overrides;
    warm.overrides.insert(warm.overrides.end(), {str_cat("train.seed=", warm.seed),
                                                 str_cat("train.steps=", spec.warm_start.steps), "data.eval=''"});
    const TrainConfig config = resolved_config(spec, warm);
    warm.config_hash = hash_without_threads(config);
    warm.steps = spec.warm_start.steps;
    warm.run_dir = runs_root / "warm_start";
    warm.log_file = runs_root / "warm_start.log";
    warm.lock_file = runs_root / "warm_start.lock";
    warm_info = {{"steps", warm.steps}, {"seed", warm.seed}, {"config_hash", warm.config_hash}};
  }

  int total_threads = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int threads = std::max(1, total_threads / o.parallel);
  const std::string memory_refusal = parallel_memory_refusal(spec, pending, o.parallel, init_from);
  if (!memory_refusal.empty() && !o.ignore_memory_plan)
    AR_FAIL(memory_refusal, ". --ignore-memory-plan starts them anyway.");
  if (!memory_refusal.empty()) log::warn(str_cat(memory_refusal, "; starting anyway (--ignore-memory-plan)"));
  if (o.dry_run) {
    std::printf("%-24s %-6s %s\n", "run", "status", "command");
    for (PlannedRun* r : pending) {
      const int64_t at = latest_checkpoint_step(r->run_dir);
      std::string cmd = o.executable;
      for (const auto& a : train_args(spec, *r, threads, init_from.empty() && warm.steps ? "WARM_START" : init_from))
        cmd += " " + a;
      std::printf("%-24s %-6s %s\n", r->label().c_str(), at >= 0 ? str_cat("@", at).c_str() : "new", cmd.c_str());
    }
    return 0;
  }

  install_stop_handlers();
  const std::string commit = current_commit();
  auto run_children = [&](std::vector<PlannedRun*> queue, int parallel) -> std::vector<std::string> {
    std::vector<std::string> failures;
    std::map<pid_t, Running> running;
    size_t next = 0;
    bool forwarded = false;
    while (next < queue.size() || !running.empty()) {
      if (stop_requested() && !forwarded) {
        for (const auto& [pid, r] : running) ::kill(pid, SIGTERM);
        forwarded = true;
      }
      while (!stop_requested() && static_cast<int>(running.size()) < parallel && next < queue.size()) {
        PlannedRun& r = *queue[next++];
        const int lock = lock_run(r);
        if (lock < 0) {
          failures.push_back(str_cat(r.label(), ": another process holds ", r.lock_file.string(),
                                     " (a run of this study still running?)"));
          continue;
        }
        prepare_run_dir(r);
        const std::vector<std::string> args = train_args(spec, r, threads, init_from);
        const int64_t at = latest_checkpoint_step(r.run_dir);
        log::info(str_cat("ablate: ", r.label(), at >= 0 ? str_cat(": resuming from step ", at) : std::string(": starting"),
                          " (", threads, " threads, log ", r.log_file.string(), ")"));
        const pid_t pid = launch(o.executable, args, r.log_file, lock);
        ::close(lock);  // the child's copy holds the lock from here on
        running[pid] = Running{&r, std::chrono::steady_clock::now()};
      }
      int status = 0;
      const pid_t pid = ::waitpid(-1, &status, WNOHANG);
      if (pid == 0 || (pid < 0 && errno == EINTR)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        continue;
      }
      if (pid < 0) break;
      const auto it = running.find(pid);
      if (it == running.end()) continue;
      PlannedRun& r = *it->second.run;
      const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - it->second.started).count();
      running.erase(it);
      if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && run_finished(r)) {
        if (r.arm) {
          write_result(spec, r, resolved_config(spec, r), commit, warm_info, threads, wall);
          curves.push_back(read_result(spec, r));
        }
        log::info(str_cat("ablate: ", r.label(), " done in ", static_cast<int64_t>(wall), " s"));
      } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        const int64_t at = latest_checkpoint_step(r.run_dir);
        log::info(str_cat("ablate: ", r.label(),
                          at >= 0 ? str_cat(" stopped; its checkpoint of step ", at, " resumes it")
                                  : std::string(" stopped before its first checkpoint; it starts again"),
                          " when the same command runs again"));
      } else {
        const std::string how =
            WIFEXITED(status) ? str_cat("exit code ", WEXITSTATUS(status))
            : WTERMSIG(status) == SIGKILL
                ? std::string("signal 9 (SIGKILL: the kernel's out-of-memory killer sends it when the machine runs "
                              "out of memory; `dmesg` says; with --parallel, fewer runs at once need less)")
                : str_cat("signal ", WTERMSIG(status));
        failures.push_back(str_cat(r.label(), ": ", how, "; the end of ", r.log_file.string(), ":", tail_of(r.log_file, 6)));
        log::warn("ablate: " + failures.back());
      }
    }
    return failures;
  };

  if (warm.steps > 0) {
    if (!run_finished(warm)) {
      const auto failures = run_children({&warm}, 1);
      AR_CHECK(failures.empty(), "ablate: the warm start failed: ", failures.front());
      if (stop_requested()) return 130;
      AR_CHECK(run_finished(warm), "ablate: the warm start did not reach step ", warm.steps);
    }
    fs::path checkpoint;
    latest_checkpoint_step(warm.run_dir, &checkpoint);
    init_from = checkpoint.string();
  }
  const std::vector<std::string> failures = run_children(pending, o.parallel);
  const size_t done = curves.size();
  write_report(o, spec, curves);
  if (stop_requested()) {
    log::warn(str_cat("ablate: interrupted with ", done, "/", plan.size(),
                      " runs done; run the same command to continue (stopped runs resume from their last checkpoint, or start again if they had none)"));
    return 130;
  }
  if (!failures.empty()) {
    std::string all;
    for (const auto& f : failures) all += "\n  " + f;
    AR_FAIL("ablate: ", failures.size(), " run(s) failed (the others are in the ledger; fix the cause and run the same "
            "command again):", all);
  }
  return 0;
}

}  // namespace anchor
