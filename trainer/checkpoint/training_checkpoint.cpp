#include "trainer/checkpoint/training_checkpoint.h"

#include <torch/torch.h>

#include <filesystem>

#include "trainer/optim/adamw_state.h"

namespace anchor {

std::string save_training_checkpoint(const std::string& run_dir, const TrainerState& state, const Pretrained& policy,
                                     torch::optim::AdamW& optimizer, int64_t keep_last) {
  return save_checkpoint(run_dir, state, policy, adamw_state_tensors(optimizer, policy.model.named_parameters()),
                         keep_last);
}

void restore_training_checkpoint(const std::string& checkpoint_dir, const Pretrained& policy,
                                 torch::optim::AdamW& optimizer) {
  SafetensorsFile saved((std::filesystem::path(checkpoint_dir) / "trainer_state.safetensors").string());
  load_adamw_state(optimizer, policy.model.named_parameters(), saved);
}

}  // namespace anchor
