#include "trainer/checkpoint/training_checkpoint.h"

#include <filesystem>

namespace anchor {

std::string save_training_checkpoint(const std::string& run_dir, const TrainerState& state, const Pretrained& policy,
                                     const NamedTensors& optimizer_state, int64_t keep_last) {
  return save_checkpoint(run_dir, state, policy, optimizer_state, keep_last);
}

void restore_training_checkpoint(const std::string& checkpoint_dir, Optimizer& optimizer) {
  optimizer.load_state(SafetensorsFile((std::filesystem::path(checkpoint_dir) / "trainer_state.safetensors").string()));
}

}  // namespace anchor
