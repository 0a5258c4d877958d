// The start of every training command (train, sft): load and validate the config, apply
// --run-dir, find the checkpoint to resume or the weights to start from, open the run
// directory, and build the optimizer — so both loops begin from the same, tested code.
#pragma once


#include <memory>
#include <string>

#include "trainer/checkpoint/checkpoint.h"
#include "trainer/checkpoint/run_directory.h"
#include "trainer/config/train_config.h"
#include "trainer/run/run_options.h"

namespace anchor {

struct RunStart {
  TrainConfig config;
  std::string config_hash;
  std::string checkpoint_dir;  // the checkpoint being resumed ("" for a new run)
  std::string weights_from;    // model.path, --init-from, or the checkpoint
  TrainerState state;          // step 0 for a new run
  std::unique_ptr<RunDirectory> run;  // null on data-parallel ranks other than 0
};

// `writes_run_directory`: false on data-parallel ranks other than 0, which read the config and
// the checkpoint but leave the run directory to rank 0.
RunStart start_run(const TrainRunOptions& options, ConfigUse use, const std::string& command,
                   bool writes_run_directory = true);


}  // namespace anchor
