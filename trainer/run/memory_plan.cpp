#include "trainer/run/memory_plan.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <functional>

#include "credit/credit_options.h"
#include "trainer/common/error.h"
#include "trainer/rollout/evaluation_rows.h"

namespace anchor {
namespace {

constexpr int64_t kMiB = int64_t{1} << 20;
constexpr int64_t kGiB = int64_t{1} << 30;
// The process before any tensor: LibTorch, the tokenizer, the data (CPU: 377 MiB measured at
// the start of the demo and SmolLM2 runs here); CUDA context, cuBLAS / cuDNN workspaces and
// NCCL buffers (an estimate).
constexpr int64_t kCpuRuntimeBytes = 380 * kMiB;
constexpr int64_t kCudaRuntimeBytes = kGiB;
// CPU: what the first step adds to the process beyond tensors (JIT-compiled GEMM kernels,
// oneDNN primitives, OpenMP thread stacks): 130-150 MiB measured here, on the demo and SmolLM2.
constexpr int64_t kCpuKernelBytes = 150 * kMiB;
// fused_logprobs.cpp projects ~4 Mi logits per chunk; about three such buffers are live.
constexpr int64_t kLogprobChunkBytes = 3 * 16 * kMiB;
// CPU: what a training forward holds beyond the tensors autograd keeps (heap fragmentation
// between micro-batches of other shapes, GEMM workspaces): 20-30% measured on SmolLM2 (resident
// memory before and after the forward of micro-batches of 1 207 and 2 412 positions).
constexpr double kCpuForwardOverhead = 0.20;
// parameter_sync.h: gradients move between ranks in 64 MB buckets.
constexpr int64_t kBucketBytes = 64 * kMiB;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

int compute_bytes_of(const std::string& dtype, bool cuda) {
  if (dtype == "auto") return cuda ? 2 : 4;
  return dtype == "float32" ? 4 : 2;
}

// Bytes autograd keeps per token position and decoder layer for the backward (no
// checkpointing): the two norm outputs, the residual stream after attention and after the
// MLP, the rotated q and k and the v that attention reads, its output (and the contiguous copy
// o_proj reads) and log-sum-exp, the MLP's gate, up, silu and product. (Rotary multiplies by
// tables that need no gradient, so only its result is kept.)
int64_t layer_activation_bytes(const LlamaConfig& m, int c) {
  const int64_t h = m.hidden_size, q = m.num_attention_heads * m.head_dim, kv = m.num_key_value_heads * m.head_dim,
                I = m.intermediate_size;
  int64_t elements = 4 * h + 3 * q + 2 * kv + 4 * I;
  int64_t fp32 = 2 + m.num_attention_heads;  // rms rstd x2, attention log-sum-exp per head
  if (m.qk_norm) {
    elements += q + kv;
    fp32 += m.num_attention_heads + m.num_key_value_heads;
  }
  int64_t bytes = elements * c + 4 * fp32;
  if (c < 4) bytes += 2 * 6 * h + (m.qk_norm ? 6 * (q + kv) : 0);  // reduced precision: norms in fp32
  return bytes;
}

// Bytes of one position's intermediates in a no-grad forward (one layer live at a time).
int64_t layer_working_bytes(const LlamaConfig& m, int c) {
  return (3 * m.intermediate_size + 3 * m.hidden_size + m.num_attention_heads * m.head_dim +
          2 * m.num_key_value_heads * m.head_dim) * c;
}

int64_t kv_bytes_per_token(const LlamaConfig& m, int c) {
  return m.num_hidden_layers * 2 * m.num_key_value_heads * m.head_dim * c;
}

std::string str_of(int64_t v) { return std::to_string(v); }

}  // namespace

int64_t MemoryPhase::total() const {
  int64_t t = 0;
  for (const MemoryItem& i : items) t += i.bytes;
  return t;
}

int64_t MemoryPlan::resident_total() const {
  int64_t t = 0;
  for (const MemoryItem& i : resident) t += i.bytes;
  return t;
}

const MemoryPhase& MemoryPlan::peak_phase() const {
  static const MemoryPhase none{"none", {}};
  const MemoryPhase* best = &none;
  for (const MemoryPhase& p : phases)
    if (p.total() > best->total()) best = &p;
  return *best;
}

const MemoryItem& MemoryPlan::largest_item() const {
  const MemoryItem* best = nullptr;
  for (const MemoryItem& i : resident)
    if (!best || i.bytes > best->bytes) best = &i;
  for (const MemoryItem& i : peak_phase().items)
    if (!best || i.bytes > best->bytes) best = &i;
  static const MemoryItem empty;
  return best ? *best : empty;
}

int64_t count_parameters(const LlamaConfig& m) {
  const int64_t h = m.hidden_size, q = m.num_attention_heads * m.head_dim, kv = m.num_key_value_heads * m.head_dim,
                I = m.intermediate_size;
  int64_t layer = 2 * h + h * q + 2 * h * kv + q * h + 3 * h * I;
  if (m.qkv_bias) layer += q + 2 * kv;
  if (m.o_proj_bias) layer += h;
  if (m.qk_norm) layer += 2 * m.head_dim;
  if (m.mlp_bias) layer += 2 * I + h;
  return m.vocab_size * h * (m.tie_word_embeddings ? 1 : 2) + h + m.num_hidden_layers * layer;
}

int64_t count_lora_parameters(const LlamaConfig& m, const LoraSettings& lora) {
  const int64_t h = m.hidden_size, q = m.num_attention_heads * m.head_dim, kv = m.num_key_value_heads * m.head_dim,
                I = m.intermediate_size;
  int64_t per_layer = 0;
  for (LoraModule module : lora.targets) {
    switch (module) {  // rank x (in + out)
      case LoraModule::q_proj: per_layer += h + q; break;
      case LoraModule::k_proj: case LoraModule::v_proj: per_layer += h + kv; break;
      case LoraModule::o_proj: per_layer += q + h; break;
      case LoraModule::gate_proj: case LoraModule::up_proj: case LoraModule::down_proj: per_layer += h + I; break;
    }
  }
  return lora.rank * per_layer * m.num_hidden_layers;
}

MemoryPlan plan_memory(const MemoryPlanInputs& in) {
  const LlamaConfig& m = in.model;
  const TrainConfig& cfg = in.config;
  const bool rl = in.use == ConfigUse::rl;
  const int64_t K = std::max<int64_t>(1, in.world_size);
  const int64_t N = count_parameters(m);
  const int c = compute_bytes_of(cfg.model.dtype, in.cuda);
  const bool mixed = c < 4;
  const int stage = static_cast<int>(cfg.distributed.zero_stage);
  const int64_t L = m.num_hidden_layers, V = m.vocab_size;
  const int64_t shard = ceil_div(N, K);

  MemoryPlan plan;
  plan.parameters = N;
  plan.compute_bytes = c;
  plan.device_bytes = in.device_bytes;
  plan.device_name = in.device_name;
  char summary[256];
  std::snprintf(summary, sizeof summary, "%s, %.1f M parameters, %lld layers, hidden %lld, vocabulary %lld",
                m.model_type.c_str(), static_cast<double>(N) / 1e6, static_cast<long long>(L),
                static_cast<long long>(m.hidden_size), static_cast<long long>(V));
  plan.model_summary = summary;

  // Resident: all run long. With LoRA the optimizer's share is the adapters' (T parameters).
  const bool lora = cfg.model.lora.enabled;
  const int64_t T = lora ? count_lora_parameters(m, cfg.model.lora.settings()) : N;
  const int64_t trainable_shard = ceil_div(T, K);
  if (lora) {
    plan.resident.push_back({c == 4 ? "frozen base weights (fp32)" : "frozen base weights (bf16)", c * N,
                             "model.lora: the base in the compute dtype"});
    plan.resident.push_back({"LoRA adapters (fp32)", 4 * T, str_cat(T, " trainable parameters")});
  } else {
    plan.resident.push_back({"weights (fp32)", 4 * N, "every parameter on every rank: the master weights"});
  }
  if (stage == 0) {
    plan.resident.push_back({"gradients (fp32)", 4 * T, "kept from the first backward to the next update's zero_grad"});
    plan.resident.push_back({"AdamW moments (fp32)", 8 * T, "exp_avg and exp_avg_sq"});
  } else {
    if (stage == 1)
      plan.resident.push_back({"gradients (fp32)", 4 * T, "full until the update reduce-scatters them"});
    plan.resident.push_back({"gradient sum, this rank's slice", 4 * trainable_shard,
                             str_cat("1/", K, " of the trainable parameters")});
    plan.resident.push_back({"AdamW moments, this rank's slice", 8 * trainable_shard, str_cat("ZeRO-", stage, ": 1/", K)});
    plan.resident.push_back({"master weights, this rank's slice", 4 * trainable_shard, str_cat("ZeRO-", stage, ": 1/", K)});
  }
  if (rl && cfg.algo.kl_coef > 0 && !lora)
    plan.resident.push_back({"KL reference model (fp32)", 4 * N, "algo.kl_coef > 0: a frozen copy of the start"});
  plan.resident.push_back({"runtime", in.runtime_bytes >= 0 ? in.runtime_bytes : in.cuda ? kCudaRuntimeBytes : kCpuRuntimeBytes,
                           in.runtime_bytes >= 0 ? "this process before loading weights (measured)"
                           : in.cuda ? "CUDA context, library workspaces, NCCL (estimate)"
                                     : "LibTorch, tokenizer, data (estimate)"});
  if (!in.cuda) plan.resident.push_back({"kernels and caches", kCpuKernelBytes, "JIT GEMM code, oneDNN primitives, threads"});
  const int64_t autocast_copy = mixed && !lora ? static_cast<int64_t>(c) * N : 0;  // LoRA's base is already bf16

  // Sizes of the step.
  const int64_t G = rl ? cfg.rollout.samples_per_prompt : 1;
  const int64_t P = in.prompt_tokens;
  const int64_t R = rl ? cfg.rollout.max_new_tokens : 0;
  plan.sequence_tokens = P + R;
  const int64_t rollout_groups = rl ? ceil_div(cfg.rollout.prompts_per_step, K) : 0;
  plan.rollout_rows = rollout_groups * G;
  int64_t micro = 0;
  if (rl) {
    const int64_t rows_per_mini_batch = ceil_div(plan.rollout_rows, std::max<int64_t>(1, cfg.algo.mini_batches));
    micro = std::max<int64_t>(1, std::min(cfg.algo.micro_batch_size, rows_per_mini_batch));
  } else {
    micro = cfg.sft.batch_size;  // one forward per optimizer step
  }
  const bool shared = rl && cfg.algo.shared_prompts;
  const int64_t groups_in_micro =
      cfg.algo.mini_batches == 1 ? ceil_div(micro, G) + (micro % G != 0 ? 1 : 0) : micro;
  const int64_t positions = shared ? std::min(micro, groups_in_micro) * P + micro * R : micro * (P + R);
  plan.settings = str_cat(rl ? "RL" : "SFT", ", world size ", K, ", ZeRO stage ", stage, ", compute ",
                          c == 4 ? "fp32" : "bf16", ", ", rl ? "prompt " : "sequence ", P, " tokens",
                          rl ? str_cat(" + ", R, " new") : std::string(), ", micro-batch ", micro, " sequences",
                          cfg.model.activation_checkpointing ? ", activation checkpointing" : "");

  // Update: one micro-batch's forward and backward.
  MemoryPhase update{"update", {}};
  const int64_t per_layer = layer_activation_bytes(m, c);
  if (cfg.model.activation_checkpointing) {
    update.items.push_back({"layer inputs (activation checkpointing)", L * positions * m.hidden_size * c,
                            str_cat(positions, " positions x ", L, " layers")});
    update.items.push_back({"one layer recomputed in backward", per_layer * positions, ""});
  } else {
    update.items.push_back({"activations of one micro-batch", L * per_layer * positions,
                            str_cat(positions, " positions x ", L, " layers x ", per_layer, " B")});
  }
  if (shared)
    update.items.push_back({"keys / values with the shared prompt", (cfg.model.activation_checkpointing ? 1 : L) * 2 *
                                                                        micro * (P + R) * m.num_key_value_heads *
                                                                        m.head_dim * c,
                            "each row's copy of its group's prompt keys"});
  if (rl && credit::strategy_uses_attention(cfg.credit.strategy) && cfg.algo.ppo_epochs == 1 && cfg.algo.mini_batches == 1) {
    const int64_t observed = cfg.credit.layers.mode == credit::LayerMode::automatic
                                 ? std::min<int64_t>(5, L)
                                 : static_cast<int64_t>(credit::observed_layers(cfg.credit.layers, L).size());
    update.items.push_back({"attention probabilities of the observed layers",
                            observed * micro * m.num_attention_heads * R * (P + R) * 4,
                            str_cat(observed, " layers (credit in the training forward)")});
  }
  // Attention turns the boolean mask into a float one per layer and keeps it for the backward.
  const int64_t mask_positions = shared ? micro * R * (P + R) + std::min(micro, groups_in_micro) * P * P
                                        : micro * (P + R) * (P + R);
  update.items.push_back({"attention masks (float, one per layer)",
                          (cfg.model.activation_checkpointing ? 1 : L) * mask_positions * 4, "queries x keys"});
  if (!in.cuda) {
    int64_t kept = 0;
    for (const MemoryItem& i : update.items) kept += i.bytes;
    update.items.push_back({"CPU allocator overhead", static_cast<int64_t>(kCpuForwardOverhead * static_cast<double>(kept)),
                            "20% of the above: fragmentation, GEMM workspaces (measured)"});
  }
  update.items.push_back({"backward: one layer's activation gradients", per_layer * positions, ""});
  update.items.push_back({"log-prob chunks", kLogprobChunkBytes, "fused_logprobs: the vocabulary never as a whole"});
  if (stage == 2) update.items.push_back({"gradients of the micro-batch in flight", 4 * T, "moved to the slice after each backward"});
  if (autocast_copy > 0) update.items.push_back({"bf16 copy of the weights (autocast)", autocast_copy, "cast once per forward"});
  if (K > 1) update.items.push_back({"gradient bucket", std::min(kBucketBytes, 4 * T), "reduce between ranks"});
  plan.phases.push_back(update);

  if (rl) {
    // Scoring: the no-grad pass of the old policy / reference / attention statistics.
    MemoryPhase scoring{"scoring", {}};
    scoring.items.push_back({"one layer's intermediates (no grad)", positions * layer_working_bytes(m, c), ""});
    scoring.items.push_back({"log-prob chunks", kLogprobChunkBytes, ""});
    if (mixed) scoring.items.push_back({"bf16 copy of the weights (autocast)", autocast_copy, ""});
    plan.phases.push_back(scoring);
  }

  // Sampling: KV cache and decode buffers per row, packed decode weights and casts per call.
  // Sampled rows hold the prompt and rollout.max_new_tokens (SFT's evaluation samples too).
  const int64_t kv_row = (P + cfg.rollout.max_new_tokens) * kv_bytes_per_token(m, c);
  const int64_t decode_row = V * 20;  // logits, softmax, sorted values and int64 indices (top-p)
  const int64_t prefill_row = P * layer_working_bytes(m, c);
  const int64_t per_row = kv_row + decode_row + prefill_row;
  const int64_t packed = (!in.cuda && c == 4) ? 4 * N : 0;  // CPU: weights prepacked for decode GEMMs
  const int64_t sampling_fixed = packed + autocast_copy;
  auto sampling_phase = [&](const std::string& name, int64_t rows) {
    MemoryPhase p{name, {}};
    p.items.push_back({"KV cache", rows * kv_row, str_cat(rows, " rows x ", P + cfg.rollout.max_new_tokens, " tokens")});
    p.items.push_back({"decode buffers", rows * decode_row, "logits, softmax, top-p sort"});
    p.items.push_back({"prefill intermediates", ceil_div(rows, G) * prefill_row, "one layer, one prefill per prompt"});
    if (packed) p.items.push_back({"packed decode weights", packed, "CPU: a copy laid out for small GEMMs"});
    if (mixed) p.items.push_back({"bf16 copy of the weights (autocast)", autocast_copy, ""});
    return p;
  };
  const int64_t budget = in.device_bytes > 0 ? in.device_bytes - plan.resident_total() - sampling_fixed : -1;
  auto rows_within = [&](int64_t bytes) { return bytes / std::max<int64_t>(1, per_row); };
  if (rl) {
    plan.rollout_chunk_rows = plan.rollout_rows;
    if (in.device_bytes > 0 && plan.rollout_rows * per_row > budget) {
      int64_t rows = std::max<int64_t>(1, rows_within(std::max<int64_t>(0, budget)));
      if (rows >= G) rows = rows / G * G;  // whole groups share one prefill
      plan.rollout_chunk_rows = std::min(plan.rollout_rows, rows);
    }
    plan.phases.push_back(sampling_phase("rollout", plan.rollout_chunk_rows));
  }
  if (!cfg.data.eval.empty()) {
    // Evaluation never needs more than the step itself: its chunk fits in the largest phase.
    int64_t step_phase = 0;
    for (const MemoryPhase& p : plan.phases) step_phase = std::max(step_phase, p.total());
    int64_t rows = std::min(kMaxEvalRowsPerCall, std::max<int64_t>(1, rows_within(step_phase - sampling_fixed)));
    if (in.device_bytes > 0) rows = std::min(rows, std::max<int64_t>(1, rows_within(std::max<int64_t>(0, budget))));
    plan.eval_chunk_rows = rows;
    plan.phases.push_back(sampling_phase("evaluation", rows));
  }
  return plan;
}

std::string format_bytes(int64_t bytes) {
  char buf[64];
  if (std::llabs(bytes) >= kGiB) std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(bytes) / kGiB);
  else std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / kMiB);
  return buf;
}

std::string format_memory_plan(const MemoryPlan& plan) {
  std::string out;
  char line[512];
  auto row = [&](const std::string& indent, const MemoryItem& i) {
    std::snprintf(line, sizeof line, "%s%-46s %12s   %s\n", indent.c_str(), i.name.c_str(), format_bytes(i.bytes).c_str(),
                  i.note.c_str());
    out += line;
  };
  out += "memory plan per rank: " + plan.model_summary + "\n";
  out += "  " + plan.settings + "\n";
  out += "resident (all run long)\n";
  for (const MemoryItem& i : plan.resident) row("  ", i);
  row("  ", {"resident total", plan.resident_total(), ""});
  out += "phases (one at a time, on top of the resident items)\n";
  const MemoryPhase& peak = plan.peak_phase();
  for (const MemoryPhase& p : plan.phases) {
    std::string title = p.name;
    if (p.name == "rollout") title += str_cat(" (", plan.rollout_chunk_rows, " of ", plan.rollout_rows, " rows per generate call)");
    if (p.name == "evaluation") title += str_cat(" (", plan.eval_chunk_rows, " rows per generate call)");
    if (&p == &peak) title += "  <- peak";
    out += "  " + title + "\n";
    for (const MemoryItem& i : p.items) row("    ", i);
    row("    ", {"phase total", p.total(), ""});
  }
  std::snprintf(line, sizeof line, "peak: %s (resident %s + %s)", format_bytes(plan.peak()).c_str(),
                format_bytes(plan.resident_total()).c_str(), peak.name.c_str());
  out += line;
  if (plan.device_bytes > 0) {
    std::snprintf(line, sizeof line, " of %s %s: %.0f%%, %s\n", format_bytes(plan.device_bytes).c_str(),
                  plan.device_name.c_str(), 100.0 * static_cast<double>(plan.peak()) / static_cast<double>(plan.device_bytes),
                  plan.fits() ? "fits" : "DOES NOT FIT");
    out += line;
  } else {
    out += " (device memory unknown)\n";
  }
  return out;
}

std::string memory_plan_refusal(const MemoryPlanInputs& in, const MemoryPlan& plan) {
  if (plan.fits()) return "";
  const MemoryItem& largest = plan.largest_item();
  std::string msg = str_cat("the run does not fit: the memory plan needs ", format_bytes(plan.peak()), " per rank at its ",
                            plan.peak_phase().name, " peak and the device has ", format_bytes(plan.device_bytes), " ",
                            plan.device_name, "; the largest item is ", largest.name, " (",
                            format_bytes(largest.bytes), ").");
  // Each candidate fix re-planned; the ones that fit are named with their peak.
  struct Fix { std::string name; std::function<void(TrainConfig&)> apply; };
  std::vector<Fix> fixes;
  const TrainConfig& cfg = in.config;
  const bool rl = in.use == ConfigUse::rl;
  if (in.world_size > 1)
    for (int64_t s = cfg.distributed.zero_stage + 1; s <= 2; ++s)
      fixes.push_back({str_cat("distributed.zero_stage=", s), [s](TrainConfig& c) { c.distributed.zero_stage = s; }});
  if (!cfg.model.activation_checkpointing)
    fixes.push_back({"model.activation_checkpointing=true", [](TrainConfig& c) { c.model.activation_checkpointing = true; }});
  // LoRA (rank 16 on every linear layer): the optimizer's share shrinks to the adapters, the base
  // is stored in the compute dtype and the KL reference costs nothing. The config's own LoRA when
  // it has one (the combined and the most frugal settings below apply this too).
  auto frugal_lora = [](TrainConfig& c) {
    if (c.model.lora.enabled) return;
    c.model.lora.enabled = true;
    c.model.lora.rank = 16;
    c.model.lora.target_modules = {"all-linear"};
  };
  if (!cfg.model.lora.enabled) fixes.push_back({"model.lora.enabled=true (rank 16, all-linear)", frugal_lora});
  const int64_t micro = rl ? cfg.algo.micro_batch_size : cfg.sft.batch_size;
  for (int64_t mb = micro / 2; mb >= 1; mb /= 2) {
    if (rl) fixes.push_back({str_cat("algo.micro_batch_size=", mb), [mb](TrainConfig& c) { c.algo.micro_batch_size = mb; }});
    else fixes.push_back({str_cat("sft.batch_size=", mb), [mb](TrainConfig& c) { c.sft.batch_size = mb; }});
  }
  std::vector<std::string> fitting;
  auto try_fix = [&](const std::string& name, const std::function<void(TrainConfig&)>& apply) {
    MemoryPlanInputs changed = in;
    apply(changed.config);
    const MemoryPlan p = plan_memory(changed);
    if (p.fits()) fitting.push_back(str_cat(name, " (peak ", format_bytes(p.peak()), ")"));
    return p.fits();
  };
  bool micro_found = false;
  for (const Fix& f : fixes) {
    const bool is_micro = f.name.rfind("algo.micro_batch_size", 0) == 0 || f.name.rfind("sft.batch_size", 0) == 0;
    if (is_micro && micro_found) continue;  // the largest micro-batch that fits is enough
    if (try_fix(f.name, f.apply) && is_micro) micro_found = true;
  }
  const std::string lora_name = cfg.model.lora.enabled ? "" : "model.lora.enabled=true + ";
  if (fitting.empty()) {  // all of them together
    const int64_t best_stage = in.world_size > 1 ? 2 : cfg.distributed.zero_stage;
    for (int64_t mb = micro; mb >= 1; mb /= 2) {
      const std::string name = str_cat(in.world_size > 1 ? "distributed.zero_stage=2 + " : "", lora_name,
                                       "model.activation_checkpointing=true + ", rl ? "algo.micro_batch_size=" : "sft.batch_size=", mb);
      if (try_fix(name, [&](TrainConfig& c) {
            c.distributed.zero_stage = best_stage;
            frugal_lora(c);
            c.model.activation_checkpointing = true;
            (rl ? c.algo.micro_batch_size : c.sft.batch_size) = mb;
          }))
        break;
    }
  }
  if (fitting.empty()) {
    // What is left at the most memory-frugal setting, largest first.
    MemoryPlanInputs frugal = in;
    if (in.world_size > 1) frugal.config.distributed.zero_stage = 2;
    frugal.config.model.activation_checkpointing = true;
    frugal_lora(frugal.config);
    (rl ? frugal.config.algo.micro_batch_size : frugal.config.sft.batch_size) = 1;
    const MemoryPlan f = plan_memory(frugal);
    std::vector<MemoryItem> items = f.resident;
    for (const MemoryItem& i : f.peak_phase().items) items.push_back(i);
    std::sort(items.begin(), items.end(), [](const MemoryItem& a, const MemoryItem& b) { return a.bytes > b.bytes; });
    msg += str_cat(" No setting of ZeRO stage, activation checkpointing, LoRA or micro-batch makes it fit: at ",
                   in.world_size > 1 ? "ZeRO-2, " : "", "LoRA, checkpointing and micro-batch 1 it still needs ",
                   format_bytes(f.peak()), ", most of it ");
    for (size_t i = 0; i < std::min<size_t>(3, items.size()); ++i)
      msg += str_cat(i ? ", " : "", items[i].name, " ", format_bytes(items[i].bytes));
    msg += ". Shorter sequences (rollout.max_new_tokens, data.max_prompt_tokens), fewer rollout prompts per rank, "
           "more ranks (for the sharded items) or a device with more memory.";
  } else {
    msg += " It fits with any one of: ";
    for (size_t i = 0; i < fitting.size(); ++i) msg += (i ? "; " : "") + fitting[i];
    msg += ".";
  }
  return msg;
}

int64_t parse_byte_size(const std::string& text, const std::string& what) {
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  std::string unit = text.substr(i);
  unit.erase(std::remove(unit.begin(), unit.end(), ' '), unit.end());
  double value = 0;
  try {
    size_t used = 0;
    value = std::stod(text.substr(0, i), &used);
    AR_CHECK(used == i, "");
  } catch (const std::exception&) {
    AR_FAIL(what, ": '", text, "' is not a size (expected a number with a unit, e.g. 80GiB, 141GB, 512MiB)");
  }
  std::string u;
  for (char ch : unit) u += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  double scale = 0;
  if (u.empty() || u == "b") scale = 1;
  else if (u == "kib") scale = 1024.0;
  else if (u == "mib") scale = 1024.0 * 1024;
  else if (u == "gib") scale = 1024.0 * 1024 * 1024;
  else if (u == "tib") scale = 1024.0 * 1024 * 1024 * 1024;
  else if (u == "kb") scale = 1e3;
  else if (u == "mb") scale = 1e6;
  else if (u == "gb") scale = 1e9;
  else if (u == "tb") scale = 1e12;
  AR_CHECK(scale > 0 && value > 0, what, ": '", text,
           "' is not a size (expected a positive number with B, KB, MB, GB, TB, KiB, MiB, GiB or TiB, e.g. 80GiB)");
  return static_cast<int64_t>(value * scale);
}

}  // namespace anchor
