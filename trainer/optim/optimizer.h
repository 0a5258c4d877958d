// The run's optimizer: AdamW over the policy's parameters, with the gradient sum over
// data-parallel ranks and global-norm clipping, at one of three ZeRO stages
// (distributed.zero_stage; Rajbhandari et al. 2020):
//   0  replicated: every rank holds the moments of every parameter and all-reduces gradients
//      (torch::optim::AdamW; the stage every earlier run used, bit for bit);
//   1  the AdamW moments and the fp32 master copy of the weights are sharded: rank r owns a
//      contiguous slice of the flat parameter buffer (sizes differ by at most one element),
//      gradients are reduce-scattered into the owners' slices, each rank updates its slice and
//      the weights are all-gathered;
//   2  as 1, and between micro-batches each rank keeps only its slice of the gradient sum
//      (after_backward moves the full gradients into the slices and frees them).
// Checkpoints hold full per-parameter moments ("name.exp_avg", "name.exp_avg_sq", "name.step"),
// the same files at every stage and world size, so a run resumes on any of them.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "trainer/model/safetensors.h"

namespace anchor {

namespace dist {
class Communicator;
}

struct AdamWSettings {
  double lr = 1e-5, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // Starts a step's gradients. `replicated`: every rank computes the same full gradients this
  // step (fewer groups than ranks), so they are not summed over ranks.
  virtual void zero_grad(bool replicated = false) = 0;
  // After each micro-batch's backward (stage 2: the gradients move into this rank's slice).
  virtual void after_backward() {}
  // Whether after_backward is a collective (stage 2 over several ranks): every rank must then
  // call it equally often per step; a rank with fewer micro-batches calls it the missing times
  // (with no gradients, it contributes zeros).
  virtual bool after_backward_is_collective() const { return false; }
  // Sums the gradients over ranks, clips them to `max_norm` by the global L2 norm (max_norm
  // <= 0: no clipping) and returns that norm, the same on every rank. A NaN / Inf anywhere
  // gives a non-finite norm; the caller then calls zero_grad instead of step.
  virtual double reduce_and_clip(double max_norm) = 0;
  // One AdamW update with the clipped gradients (and, sharded, the all-gather of the weights).
  virtual void step() = 0;
  virtual void set_learning_rate(double lr) = 0;
  // Full per-parameter state for a checkpoint. Sharded: a collective (every rank calls it);
  // the tensors are complete on rank 0 only, which writes them.
  virtual NamedTensors state_tensors() = 0;
  // Restores state_tensors' files, from a checkpoint of any stage and world size; a missing or
  // mis-shaped entry names the tensor and the file.
  virtual void load_state(const SafetensorsFile& file) = 0;
  // Bytes of AdamW moments (exp_avg + exp_avg_sq) this rank holds: what sharding divides by the
  // world size (stages 1/2 add a master slice and a gradient slice of half that each).
  virtual int64_t moment_bytes() const = 0;
  // One line for the log: stage, this rank's slice.
  virtual std::string description() const = 0;
  // Test hook (ANCHOR_TEST_POISON=gradient@STEP): a NaN in this rank's gradients.
  virtual void poison_gradients() = 0;
};

// Stage 0..2 over `parameters` (those that require grad); `comm` null or one rank: no collectives.
std::unique_ptr<Optimizer> make_optimizer(const std::vector<at::Tensor>& parameters, const std::vector<std::string>& names,
                                          const AdamWSettings& settings, int zero_stage, dist::Communicator* comm);

}  // namespace anchor
