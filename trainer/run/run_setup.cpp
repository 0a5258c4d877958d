#include "trainer/run/run_setup.h"

#include <filesystem>

#include "rewards/external_reward.h"
#include "trainer/common/error.h"
#include "trainer/common/file_util.h"
#include "trainer/common/log.h"

namespace anchor {

RunStart start_run(const TrainRunOptions& opt, ConfigUse use, const std::string& command, bool writes) {
  RunStart s;
  s.config = load_train_config(opt.config_path, opt.overrides, use);
  if (!opt.run_dir.empty()) s.config.logging.run_dir = opt.run_dir;
  const std::string& run_dir = s.config.logging.run_dir;
  AR_CHECK(opt.resume.empty() || opt.init_from.empty(), "--resume and --init-from exclude each other");
  s.config_hash = train_config_hash(s.config);
  s.weights_from = opt.init_from.empty() ? s.config.model.path : opt.init_from;
  if (!opt.resume.empty()) {
    s.checkpoint_dir = resolve_checkpoint(run_dir, opt.resume);
    s.state = load_trainer_state(s.checkpoint_dir);
    // Resume rules: any world size (the trainer state is global: data position, seeds,
    // optimizer); a different config is allowed (an ablation branching from the checkpoint)
    // and logged.
    if (s.state.config_hash != s.config_hash)
      log::warn("resuming with a config that differs from the checkpoint's (ablation branch); see config.yaml");
    s.weights_from = s.checkpoint_dir;
  }
  const std::string resolved_yaml = train_config_to_yaml(s.config);
  if (!writes) return s;
  nlohmann::json run_info = {{"command", command}, {"config", opt.config_path}, {"overrides", opt.overrides},
                             {"weights_from", s.weights_from}, {"resumed_from", s.checkpoint_dir},
                             {"init_from", opt.init_from}, {"config_hash", s.config_hash}};
  // External reward programs live outside the config: record what ran (command or URL, file
  // hashes) and say so when a resumed run's program is not the one the run started with.
  const nlohmann::json external = rewards::external_reward_records(s.config.reward.components);
  if (!external.empty()) {
    run_info["external_rewards"] = external;
    const std::string previous = (std::filesystem::path(run_dir) / "run.json").string();
    if (!opt.resume.empty() && std::filesystem::exists(previous)) {
      nlohmann::json before;
      try {
        before = read_json_file(previous).value("external_rewards", nlohmann::json());
      } catch (const std::exception& e) {
        log::warn(str_cat("cannot compare the reward programs with the run's start: ", e.what()));
      }
      for (const std::string& change : rewards::external_reward_changes(before, external))
        log::warn(str_cat("resuming with another reward program: ", change,
                          " (the run is no longer one run of one reward; see run.json)"));
    }
  }
  s.run = std::make_unique<RunDirectory>(run_dir, !opt.resume.empty(), resolved_yaml, run_info,
                                         s.config.logging.tensorboard);
  log::info(str_cat(command, ": run directory ", run_dir, "\n", resolved_yaml));
  return s;
}

}  // namespace anchor
