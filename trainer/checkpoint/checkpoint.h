// Run directories and checkpoints (docs/design.md §8).
//
//   RUN_DIR/config.yaml           resolved config (after --set)
//   RUN_DIR/run.json              where the run came from (--init-from / --resume), command line
//   RUN_DIR/metrics.jsonl         one line per step
//   RUN_DIR/train.log             the log
//   RUN_DIR/checkpoints/step-00000010/
//       config.json, model*.safetensors, tokenizer.model, tokenizer_config.json  (HF format)
//       (with LoRA instead: adapter_config.json, adapter_model.safetensors, anchor_base_model.json)
//       trainer_state.safetensors  optimizer moments and step counts
//       trainer_state.json         step, data cursor, schema version, config hash, world size
//       manifest.json              size and XXH3-64 of every file above (checkpoint_manifest.h)
//       DONE                       written last: only checkpoints with DONE are complete
//   RUN_DIR/checkpoints/latest     name of the newest complete checkpoint
//
// A checkpoint is written into a temporary directory and renamed into place, so a crash
// never leaves a half-written step-* directory; keep_last prunes the oldest complete ones.
// Resume verifies the manifest, so a file damaged after the write (truncated, a flipped byte,
// deleted) is found; `--resume latest` then falls back to the newest intact checkpoint.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

#include "trainer/model/pretrained.h"
#include "trainer/model/safetensors.h"

namespace anchor {

// 2: with manifest.json. Schema 1 checkpoints (no manifest) still load, unverified.
constexpr int kCheckpointSchemaVersion = 2;

// Keys of trainer_state.json; each has a resume rule in load_trainer_state's comment.
struct TrainerState {
  int64_t step = 0;             // optimizer steps completed
  int64_t data_epoch = 0;       // DataCursor position after `step` steps
  int64_t data_position = 0;
  std::string config_hash;      // of the resolved config; a mismatch on resume is logged
  int64_t world_size = 1;
  nlohmann::json extra = nlohmann::json::object();  // e.g. running credit statistics
};

std::string checkpoint_name(int64_t step);

// Saves policy + state + tensors (optimizer moments) as RUN_DIR/checkpoints/step-XXXXXXXX and
// returns its path. Updates `latest`, then deletes all but the newest keep_last checkpoints.
std::string save_checkpoint(const std::string& run_dir, const TrainerState& state, const Pretrained& policy,
                            const NamedTensors& state_tensors, int64_t keep_last);

// "latest" -> the checkpoint RUN_DIR/checkpoints/latest names if it is intact (DONE, manifest
// verified), else the newest intact one, with a warning saying how many steps are lost; none
// intact is an error listing what is wrong with each. Otherwise `spec` is a checkpoint
// directory, used only if intact.
std::string resolve_checkpoint(const std::string& run_dir, const std::string& spec);

TrainerState load_trainer_state(const std::string& checkpoint_dir);

}  // namespace anchor
