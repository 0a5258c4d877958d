// TrainConfig: the YAML run configuration, one struct per section (docs/design.md §2 / issue 3), with
// in-class defaults. Each section lists its fields once, in visit(); the same list drives
// reading (unknown keys and wrong types are errors naming the key path), --set overrides and
// writing the resolved config into the run directory. validate() holds every static check.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "credit/credit_options.h"
#include "rewards/reward_function.h"
#include "trainer/algo/loss_aggregation_mode.h"
#include "trainer/common/enum_names.h"
#include "trainer/model/lora_config.h"
#include "trainer/rollout/control_tokens.h"

namespace anchor {

// Closed config choices, parsed once at load (names: EnumNames below). Choices that select a
// registry entry (algo.advantage, algo.policy_loss, algo.kl_estimator, reward components) stay
// names, checked against the registry at load.
enum class TooLongPrompts { error, skip };
enum class KlPlacement { loss, reward };
enum class LrSchedule { constant, cosine };
enum class SftMode { plain, conditional, context_indicator };

// LoRA (docs/lora.md): frozen base weights, trainable adapters on the named linear layers.
struct LoraSection {
  bool enabled = false;
  int64_t rank = 16;
  double alpha = 32.0;          // scale = alpha / rank
  double dropout = 0.0;         // on the adapter input only
  std::vector<std::string> target_modules = {"all-linear"};
  std::string init = "kaiming";  // kaiming (PEFT's default) | gaussian
  LoraSettings settings() const;  // as the model takes them (target names expanded)
  template <class V> void visit(V& v) {
    v("enabled", enabled, "train LoRA adapters on a frozen base model instead of every weight");
    v("rank", rank, "adapter rank r (>= 1)");
    v("alpha", alpha, "scale of the adapter output: alpha / rank");
    v("dropout", dropout, "dropout on the adapter input, in [0, 1)");
    v("target_modules", target_modules, "PEFT names: q_proj k_proj v_proj o_proj gate_proj up_proj down_proj, or all-linear");
    v("init", init, "kaiming (A Kaiming-uniform, B 0: PEFT's default) or gaussian (A ~ N(0, 1/rank), B 0)");
  }
};

struct ModelSection {
  std::string path;             // HF model directory (config.json, safetensors, tokenizer); "~/" = $HOME
  std::string device = "cpu";   // cpu | cuda | cuda:N
  // Compute dtype; weights and optimizer state stay float32 (master weights):
  // auto (bf16 compute on CUDA, fp32 on CPU) | float32 | bfloat16 (on CPU only with AVX512-BF16/AMX)
  std::string dtype = "auto";
  int64_t threads = 0;          // CPU threads, 0 = one per core
  bool activation_checkpointing = false;  // recompute each decoder layer in backward (memory)
  LoraSection lora;
  template <class V> void visit(V& v) {
    v("path", path, "Hugging Face model directory (config.json, safetensors, tokenizer); ~/ = $HOME");
    v("device", device, "cpu, cuda or cuda:N (cuda = this rank's GPU under mpirun)");
    v("dtype", dtype, "compute dtype: auto (bf16 on CUDA, fp32 on CPU), float32 or bfloat16; weights stay fp32");
    v("threads", threads, "CPU threads per rank, 0 = the node's cores shared by its ranks");
    v("activation_checkpointing", activation_checkpointing, "recompute each decoder layer in backward");
    v.section("lora", lora);
  }
};

struct DataSection {
  std::string train;                // JSONL with a prompt field (+ answer / extra fields)
  std::string eval;                 // JSONL for held-out evaluation ("" = none)
  std::string prompt_key = "prompt";
  // auto (the model's own chat template) | plain | chatml | llama3 | qwen | a string with {prompt}
  std::string template_ = "plain";
  bool shuffle = true;
  int64_t eval_limit = 200;         // evaluate on the first N eval prompts (0 = all)
  // Longest rendered prompt in tokens; 0 = the model's positions minus rollout.max_new_tokens
  // (a longer one could not be answered). A row over the limit is an error naming file:line,
  // or with too_long_prompts: skip it is dropped at load time and counted in the log.
  int64_t max_prompt_tokens = 0;
  TooLongPrompts too_long_prompts = TooLongPrompts::error;
  template <class V> void visit(V& v) {
    v("train", train, "JSONL of prompts (a prompt field, or messages) with the reward's fields");
    v("eval", eval, "JSONL for held-out evaluation (empty = none)");
    v("prompt_key", prompt_key, "field holding the prompt text");
    v("template", template_, "auto (the model's chat template), plain, chatml, llama3, qwen, or a string with {prompt}");
    v("shuffle", shuffle, "shuffle the training prompts each epoch (seeded)");
    v("eval_limit", eval_limit, "evaluate on the first N eval prompts (0 = all)");
    v("max_prompt_tokens", max_prompt_tokens, "longest rendered prompt; 0 = the model's positions - max_new_tokens");
    v("too_long_prompts", too_long_prompts, "a prompt over the limit is an error naming file:line, or skipped");
  }
};

struct RolloutSection {
  int64_t prompts_per_step = 16;
  int64_t samples_per_prompt = 8;   // the group size G
  int64_t max_new_tokens = 64;
  double temperature = 1.0;
  double top_p = 1.0;
  int64_t top_k = 0;
  std::vector<std::string> stop;    // stop strings
  // For a model trained by sft.mode conditional / context_indicator: start every response
  // with <|good|> or <|bad|> (none = off; control tokens are then never sampled), and append
  // " [IND]" to every prompt's user message.
  Control control = Control::none;
  bool indicator = false;
  template <class V> void visit(V& v) {
    v("prompts_per_step", prompts_per_step, "prompts (groups) per RL step");
    v("samples_per_prompt", samples_per_prompt, "G, completions per prompt");
    v("max_new_tokens", max_new_tokens, "generation budget per completion");
    v("temperature", temperature, "sampling temperature of the rollouts");
    v("top_p", top_p, "nucleus sampling (1 = off)");
    v("top_k", top_k, "top-k sampling (0 = off)");
    v("stop", stop, "stop strings");
    v("control", control, "a model trained by sft.mode conditional: condition every response on this token");
    v("indicator", indicator, "a model trained by sft.mode context_indicator: append [IND] to every user message");
  }
};

// One reward component {name, weight, params...}: the reward's own entry type.
using RewardComponentConfig = rewards::CompositeReward::Entry;

struct RewardSection {
  std::vector<RewardComponentConfig> components;
  template <class V> void visit(V& v) {
    v("components", components, "list of {name, weight, ...params}: reward components, summed with weights");
  }
};

struct AlgoSection {
  std::string advantage = "grpo";        // grpo | rloo | reinforce_pp | reinforce
  bool normalize_std = true;             // grpo: off = Dr. GRPO
  std::string policy_loss = "ppo_clip";
  LossAggregation loss_agg = LossAggregation::token_mean;
  double clip_low = 0.2;
  double clip_high = 0.2;                // > clip_low = DAPO clip-higher
  double dual_clip = 0.0;                // 0 = off, else > 1
  double kl_coef = 0.0;                  // 0 = no reference model is loaded
  std::string kl_estimator = "k3";       // k1 | k2 | k3
  KlPlacement kl_in = KlPlacement::loss;
  double entropy_coef = 0.0;             // bonus on the policy entropy (token_mean)
  int64_t ppo_epochs = 1;
  int64_t mini_batches = 1;              // optimizer steps per PPO epoch
  int64_t micro_batch_size = 32;         // sequences per forward/backward
  bool shared_prompts = true;            // encode each group's prompt once per micro-batch (exact)
  bool dynamic_sampling = false;         // drop groups whose rewards are all equal, refill
  int64_t max_sampling_rounds = 4;       // rollout rounds per step when refilling
  template <class V> void visit(V& v) {
    v("advantage", advantage, "advantage estimator: grpo, rloo, reinforce_pp, reinforce");
    v("normalize_std", normalize_std, "grpo: divide by the group's std (off = Dr. GRPO)");
    v("policy_loss", policy_loss, "policy loss: ppo_clip");
    v("loss_agg", loss_agg, "loss aggregation, normalised by global counts");
    v("clip_low", clip_low, "ε_low of the clipped ratio");
    v("clip_high", clip_high, "ε_high of the clipped ratio (> clip_low = DAPO clip-higher)");
    v("dual_clip", dual_clip, "dual-clip constant c for negative advantages (0 = off, else > 1)");
    v("kl_coef", kl_coef, "KL to the frozen reference (0 = the reference is never loaded)");
    v("kl_estimator", kl_estimator, "KL estimator: k1, k2, k3");
    v("kl_in", kl_in, "KL term in the loss, or subtracted from the reward");
    v("entropy_coef", entropy_coef, "bonus on the policy entropy");
    v("ppo_epochs", ppo_epochs, "passes over each step's batch");
    v("mini_batches", mini_batches, "optimizer steps per PPO epoch");
    v("micro_batch_size", micro_batch_size, "sequences per forward / backward (memory; the gradient does not change)");
    v("shared_prompts", shared_prompts,
      "training passes encode each group's prompt once per micro-batch (exact; false only to measure)");
    v("dynamic_sampling", dynamic_sampling, "drop groups whose rewards are all equal and refill (DAPO)");
    v("max_sampling_rounds", max_sampling_rounds, "rollout rounds per step when refilling");
  }
};

// The credit section is the credit code's own options struct (credit/credit_options.h).
using CreditSection = credit::CreditOptions;

struct OptimSection {
  double lr = 1e-5;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  double grad_clip = 1.0;          // max global grad norm, 0 = off
  int64_t warmup_steps = 0;
  LrSchedule schedule = LrSchedule::constant;  // after warmup
  double min_lr_ratio = 0.0;       // cosine floor as a fraction of lr
  template <class V> void visit(V& v) {
    v("lr", lr, "peak learning rate (AdamW)");
    v("beta1", beta1, "AdamW β1");
    v("beta2", beta2, "AdamW β2");
    v("eps", eps, "AdamW ε");
    v("weight_decay", weight_decay, "AdamW decoupled weight decay");
    v("grad_clip", grad_clip, "max global gradient norm (0 = off)");
    v("warmup_steps", warmup_steps, "linear warmup steps");
    v("schedule", schedule, "learning rate after warmup");
    v("min_lr_ratio", min_lr_ratio, "cosine floor as a fraction of lr");
  }
};

struct TrainSection {
  int64_t steps = 100;
  uint64_t seed = 0;
  int64_t eval_every = 0;          // steps between evaluations (0 = only before and after)
  int64_t eval_samples = 4;        // samples per eval prompt (pass@k uses all of them)
  double eval_temperature = 1.0;
  // A NaN / Inf in rewards, loss or gradients skips the optimizer step (logged, counted in
  // skipped_steps); this many skipped steps in a row stop the run with an error.
  int64_t max_consecutive_skips = 3;
  template <class V> void visit(V& v) {
    v("steps", steps, "optimizer steps of the run");
    v("seed", seed, "seeds every random draw (sampling, data order, mini-batches, baselines)");
    v("eval_every", eval_every, "steps between held-out evaluations (0 = only before and after)");
    v("eval_samples", eval_samples, "samples per eval prompt (pass@k uses all of them)");
    v("eval_temperature", eval_temperature, "eval sampling temperature (0 = greedy)");
    v("max_consecutive_skips", max_consecutive_skips, "steps in a row skipped for NaN / Inf before the run stops");
  }
};

struct CheckpointSection {
  int64_t every = 0;      // steps between checkpoints (0 = only at the end)
  int64_t keep_last = 3;  // complete checkpoints kept (older ones are deleted)
  template <class V> void visit(V& v) {
    v("every", every, "steps between checkpoints (0 = only at the end)");
    v("keep_last", keep_last, "complete checkpoints kept (older ones are deleted)");
  }
};

struct LoggingSection {
  std::string run_dir = "runs/default";
  bool progress = true;   // one progress line per step on stderr
  bool tensorboard = true;  // RUN_DIR/tensorboard/ event files (a few hundred bytes per step)
  template <class V> void visit(V& v) {
    v("run_dir", run_dir, "run directory: config, metrics.jsonl, log, checkpoints");
    v("progress", progress, "one progress line per step on stderr");
    v("tensorboard", tensorboard, "also write every metrics line as TensorBoard scalars to RUN_DIR/tensorboard/");
  }
};

// Data-parallel runs under mpirun / srun (docs/design.md §7); ignored by a one-process run.
struct DistributedSection {
  // A collective (gradient all-reduce, gathers, barriers) that takes longer than this ends the
  // job with an error naming the rank and the collective, instead of hanging it.
  double timeout_seconds = 600;
  // ZeRO (trainer/optim/optimizer.h): 0 replicates the optimizer on every rank; 1 shards the
  // AdamW moments and fp32 master weights over the ranks; 2 also the gradient sum between
  // micro-batches. Checkpoints resume at any stage and world size.
  int64_t zero_stage = 0;
  template <class V> void visit(V& v) {
    v("timeout_seconds", timeout_seconds, "a collective slower than this ends the job with an error naming the rank");
    v("zero_stage", zero_stage,
      "0 = optimizer replicated; 1 = AdamW moments + master weights sharded over ranks; 2 = also the gradient sum");
  }
};

// sft.conditional: conditional training (Korbak et al. 2023, docs/design.md §6).
struct ConditionalSection {
  // Per-sentence scorer: a reward component name (rewards/, e.g. arithmetic_claims) applied
  // to each sentence, or "field": the row's score_key (a number for every sentence, or a list
  // with one number per sentence).
  std::string scorer = "arithmetic_claims";
  std::string score_key = "score";
  double threshold = 0.5;               // score >= threshold is good
  double threshold_percentile = -1;     // in [0, 100]: threshold = this percentile of the scores
  double unconditioned_fraction = 0.01; // sentences left without a token (seeded by train.seed)
  int64_t min_sentence_chars = 1;       // shorter sentences merge into the next (credit/ rule)
  bool mask_control_tokens = false;     // true: control tokens are inputs, not targets
  double embedding_noise_std = 1e-3;    // new rows = mean of existing rows + N(0, std)
  template <class V> void visit(V& v) {
    v("scorer", scorer, "per-sentence scorer: a reward component name, or field (the row's score_key)");
    v("score_key", score_key, "row field with the scores (scorer: field)");
    v("threshold", threshold, "score >= threshold is <|good|>");
    v("threshold_percentile", threshold_percentile, "in [0, 100]: threshold = this percentile of the scores (-1 = off)");
    v("unconditioned_fraction", unconditioned_fraction, "sentences left without a control token (seeded)");
    v("min_sentence_chars", min_sentence_chars, "shorter sentences merge into the next");
    v("mask_control_tokens", mask_control_tokens, "control tokens are inputs, not targets");
    v("embedding_noise_std", embedding_noise_std, "new embedding rows = mean of existing rows + N(0, std)");
  }
};

// sft.context_indicator: the context-dependency indicator (Wang et al., docs/design.md §6).
struct ContextIndicatorSection {
  std::string seed_model = "";  // model directory that scores the turns ("" = model.path)
  int64_t layer = -1;           // attention layer scored (-1 = the middle: num_layers / 2)
  double beta = 0.6;            // score > beta flags the turn
  double embedding_noise_std = 1e-3;
  template <class V> void visit(V& v) {
    v("seed_model", seed_model, "model directory that scores the turns (empty = model.path)");
    v("layer", layer, "attention layer scored (-1 = the middle)");
    v("beta", beta, "a score above beta flags the turn as context-dependent");
    v("embedding_noise_std", embedding_noise_std, "new embedding row = mean of existing rows + N(0, std)");
  }
};

struct SftSection {
  SftMode mode = SftMode::plain;
  // Rows: {prompt (data.prompt_key), response}, {text}, or {messages: [{role, content}...]}.
  std::string response_key = "response";  // JSONL field holding the target text
  std::string text_key = "text";          // JSONL field of plain-text rows (loss on every token)
  int64_t batch_size = 32;                // sequences per optimizer step
  // false: loss on the response / assistant turns only; true: on every token after the first.
  bool loss_on_prompt = false;
  ConditionalSection conditional;
  ContextIndicatorSection context_indicator;
  template <class V> void visit(V& v) {
    v("mode", mode, "what SFT trains on");
    v("response_key", response_key, "row field holding the target text");
    v("text_key", text_key, "row field of plain-text rows (loss on every token)");
    v("batch_size", batch_size, "sequences per optimizer step");
    v("loss_on_prompt", loss_on_prompt, "loss on every token, not only the response / assistant turns");
    v.section("conditional", conditional);
    v.section("context_indicator", context_indicator);
  }
};

struct TrainConfig {
  ModelSection model;
  DataSection data;
  RolloutSection rollout;
  RewardSection reward;
  AlgoSection algo;
  CreditSection credit;
  OptimSection optim;
  TrainSection train;
  CheckpointSection checkpoint;
  LoggingSection logging;
  DistributedSection distributed;
  SftSection sft;
  template <class V> void visit(V& v) {
    v.section("model", model); v.section("data", data); v.section("rollout", rollout);
    v.section("reward", reward); v.section("algo", algo); v.section("credit", credit);
    v.section("optim", optim); v.section("train", train); v.section("checkpoint", checkpoint);
    v.section("logging", logging); v.section("distributed", distributed); v.section("sft", sft);
  }
};

template <>
struct EnumNames<TooLongPrompts> {
  static constexpr std::pair<TooLongPrompts, const char*> values[] = {{TooLongPrompts::error, "error"},
                                                                      {TooLongPrompts::skip, "skip"}};
};
template <>
struct EnumNames<KlPlacement> {
  static constexpr std::pair<KlPlacement, const char*> values[] = {{KlPlacement::loss, "loss"},
                                                                   {KlPlacement::reward, "reward"}};
};
template <>
struct EnumNames<LrSchedule> {
  static constexpr std::pair<LrSchedule, const char*> values[] = {{LrSchedule::constant, "constant"},
                                                                  {LrSchedule::cosine, "cosine"}};
};
template <>
struct EnumNames<SftMode> {
  static constexpr std::pair<SftMode, const char*> values[] = {
      {SftMode::plain, "plain"}, {SftMode::conditional, "conditional"}, {SftMode::context_indicator, "context_indicator"}};
};

// What the config drives: `anchor-rl train` (RL), `anchor-rl sft`, or `anchor-rl credit`
// (only the credit section matters); they validate differently.
enum class ConfigUse { rl, sft, credit };

// Reads YAML text (`source` names it in errors), applies "section.key=value" overrides (values
// are YAML), then fills and validates a TrainConfig. Relative data/model paths stay as given.
TrainConfig parse_train_config(const std::string& yaml_text, const std::string& source,
                               const std::vector<std::string>& overrides = {}, ConfigUse use = ConfigUse::rl);
TrainConfig load_train_config(const std::string& path, const std::vector<std::string>& overrides = {},
                              ConfigUse use = ConfigUse::rl);
// The resolved config as YAML (every key, defaults included).
std::string train_config_to_yaml(const TrainConfig& config);
// docs/config.md: every key with its type, default, allowed values and help, as Markdown.
std::string train_config_reference();
// Hash (hex) of everything that shapes training: the resolved config without logging.*.
std::string train_config_hash(const TrainConfig& config);
// Static checks; each error names the key path and what is allowed.
void validate_train_config(const TrainConfig& config, ConfigUse use = ConfigUse::rl);

}  // namespace anchor
