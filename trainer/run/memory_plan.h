// The memory plan of a run: what one rank holds, item by item, computed from the model's
// config.json and the run config alone (no weights, no tensors), so that `anchor-rl plan`
// answers for a model that is not on disk and `train` / `sft` refuse a run that cannot fit
// before they load anything (docs/memory.md).
//
// The model: a rank holds the resident items all run long (weights, gradients, optimizer state,
// the KL reference, the runtime) and, on top of them, one phase at a time: the update (one
// micro-batch's activations), the rollout (its KV cache), the no-grad scoring pass, the
// held-out evaluation. The peak is the resident sum plus the largest phase. Sampling runs in
// chunks of rows the plan sizes (the rollout only when all its rows do not fit; evaluation so
// that it never needs more than the step does): the same samples, since each row draws from
// its own stream.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "trainer/config/train_config.h"
#include "trainer/model/llama_config.h"

namespace anchor {

struct MemoryPlanInputs {
  LlamaConfig model;
  TrainConfig config;
  ConfigUse use = ConfigUse::rl;
  int64_t world_size = 1;
  bool cuda = false;           // device kind of model.device (dtype auto = bf16 compute on CUDA)
  // RL: the longest rendered prompt; SFT: the longest training example (prompt + target).
  int64_t prompt_tokens = 0;
  int64_t device_bytes = 0;    // memory of one rank's device (0 = unknown: nothing is refused)
  std::string device_name;     // for the report ("80 GiB (--device-memory)", "CPU: MemAvailable / 2 ranks")
  int64_t runtime_bytes = -1;  // the process before any tensor (-1 = the documented estimate)
};

struct MemoryItem {
  std::string name;
  int64_t bytes = 0;
  std::string note;  // how it is counted
};

struct MemoryPhase {
  std::string name;  // update | rollout | scoring | evaluation
  std::vector<MemoryItem> items;
  int64_t total() const;
};

struct MemoryPlan {
  std::string model_summary;  // "SmolLM2-135M-shaped llama, 134.5 M parameters, ..."
  int64_t parameters = 0;
  int compute_bytes = 4;      // bytes per element of the compute dtype
  std::vector<MemoryItem> resident;
  std::vector<MemoryPhase> phases;
  int64_t rollout_rows = 0;           // this rank's rows per rollout round
  int64_t rollout_chunk_rows = 0;     // rows per generate call (= rollout_rows when they fit)
  int64_t eval_chunk_rows = 0;        // rows per evaluation generate call
  int64_t sequence_tokens = 0;        // prompt + response (RL) or the longest example (SFT)
  int64_t device_bytes = 0;
  std::string device_name;
  std::string settings;               // the settings the plan was made for, one line

  int64_t resident_total() const;
  const MemoryPhase& peak_phase() const;
  int64_t peak() const { return resident_total() + peak_phase().total(); }
  bool fits() const { return device_bytes <= 0 || peak() <= device_bytes; }
  const MemoryItem& largest_item() const;
};

MemoryPlan plan_memory(const MemoryPlanInputs& inputs);

// The plan as a table (one line per item, phases indented, the peak against the device).
std::string format_memory_plan(const MemoryPlan& plan);

// For a plan that does not fit: the largest item and the settings that would make it fit
// (each tried by re-planning: ZeRO stage, micro-batch, activation checkpointing and their
// combination), as one message. "" when it fits.
std::string memory_plan_refusal(const MemoryPlanInputs& inputs, const MemoryPlan& plan);

// "80GiB", "141 GB", "512MiB", "24000000000" -> bytes; an error naming `what` otherwise.
int64_t parse_byte_size(const std::string& text, const std::string& what);
std::string format_bytes(int64_t bytes);  // "12.34 GiB" / "345.6 MiB"

// The parameter count config.json implies (embeddings, every layer, the head unless tied).
int64_t count_parameters(const LlamaConfig& model);
// LoRA adapter parameters: rank x (in + out) of each target layer, every decoder layer.
int64_t count_lora_parameters(const LlamaConfig& model, const LoraSettings& lora);

}  // namespace anchor
