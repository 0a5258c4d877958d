// TrainConfig: the YAML run configuration, one struct per section (DESIGN 2 / issue 3), with
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

namespace anchor {

struct ModelSection {
  std::string path;             // HF model directory (config.json, safetensors, tokenizer); "~/" = $HOME
  std::string device = "cpu";   // cpu | cuda | cuda:N
  // Compute dtype; weights and optimizer state stay float32 (master weights):
  // auto (bf16 compute on CUDA, fp32 on CPU) | float32 | bfloat16 (on CPU only with AVX512-BF16/AMX)
  std::string dtype = "auto";
  int64_t threads = 0;          // CPU threads, 0 = one per core
  bool activation_checkpointing = false;  // recompute each decoder layer in backward (memory)
  template <class V> void visit(V& v) {
    v("path", path); v("device", device); v("dtype", dtype); v("threads", threads);
    v("activation_checkpointing", activation_checkpointing);
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
  std::string too_long_prompts = "error";  // error | skip
  template <class V> void visit(V& v) {
    v("train", train); v("eval", eval); v("prompt_key", prompt_key); v("template", template_);
    v("shuffle", shuffle); v("eval_limit", eval_limit); v("max_prompt_tokens", max_prompt_tokens);
    v("too_long_prompts", too_long_prompts);
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
  std::string control = "none";     // none | good | bad
  bool indicator = false;
  template <class V> void visit(V& v) {
    v("prompts_per_step", prompts_per_step); v("samples_per_prompt", samples_per_prompt);
    v("max_new_tokens", max_new_tokens); v("temperature", temperature); v("top_p", top_p); v("top_k", top_k);
    v("stop", stop); v("control", control); v("indicator", indicator);
  }
};

// One reward component {name, weight, params...}: the reward's own entry type.
using RewardComponentConfig = rewards::CompositeReward::Entry;

struct RewardSection {
  std::vector<RewardComponentConfig> components;
  template <class V> void visit(V& v) { v("components", components); }
};

struct AlgoSection {
  std::string advantage = "grpo";        // grpo | rloo | reinforce_pp | reinforce
  bool normalize_std = true;             // grpo: off = Dr. GRPO
  std::string policy_loss = "ppo_clip";
  std::string loss_agg = "token_mean";   // token_mean | seq_mean_token_mean | seq_mean_token_sum_norm
  double clip_low = 0.2;
  double clip_high = 0.2;                // > clip_low = DAPO clip-higher
  double dual_clip = 0.0;                // 0 = off, else > 1
  double kl_coef = 0.0;                  // 0 = no reference model is loaded
  std::string kl_estimator = "k3";       // k1 | k2 | k3
  std::string kl_in = "loss";            // loss | reward
  double entropy_coef = 0.0;             // bonus on the policy entropy (token_mean)
  int64_t ppo_epochs = 1;
  int64_t mini_batches = 1;              // optimizer steps per PPO epoch
  int64_t micro_batch_size = 32;         // sequences per forward/backward
  bool dynamic_sampling = false;         // drop groups whose rewards are all equal, refill
  int64_t max_sampling_rounds = 4;       // rollout rounds per step when refilling
  template <class V> void visit(V& v) {
    v("advantage", advantage); v("normalize_std", normalize_std); v("policy_loss", policy_loss);
    v("loss_agg", loss_agg); v("clip_low", clip_low); v("clip_high", clip_high); v("dual_clip", dual_clip);
    v("kl_coef", kl_coef); v("kl_estimator", kl_estimator); v("kl_in", kl_in); v("entropy_coef", entropy_coef);
    v("ppo_epochs", ppo_epochs); v("mini_batches", mini_batches); v("micro_batch_size", micro_batch_size);
    v("dynamic_sampling", dynamic_sampling); v("max_sampling_rounds", max_sampling_rounds);
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
  std::string schedule = "constant";  // constant | cosine (after warmup)
  double min_lr_ratio = 0.0;       // cosine floor as a fraction of lr
  template <class V> void visit(V& v) {
    v("lr", lr); v("beta1", beta1); v("beta2", beta2); v("eps", eps); v("weight_decay", weight_decay);
    v("grad_clip", grad_clip); v("warmup_steps", warmup_steps); v("schedule", schedule);
    v("min_lr_ratio", min_lr_ratio);
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
    v("steps", steps); v("seed", seed); v("eval_every", eval_every); v("eval_samples", eval_samples);
    v("eval_temperature", eval_temperature); v("max_consecutive_skips", max_consecutive_skips);
  }
};

struct CheckpointSection {
  int64_t every = 0;      // steps between checkpoints (0 = only at the end)
  int64_t keep_last = 3;  // complete checkpoints kept (older ones are deleted)
  template <class V> void visit(V& v) { v("every", every); v("keep_last", keep_last); }
};

struct LoggingSection {
  std::string run_dir = "runs/default";
  bool progress = true;   // one progress line per step on stderr
  template <class V> void visit(V& v) { v("run_dir", run_dir); v("progress", progress); }
};

// Data-parallel runs under mpirun / srun (DESIGN 7); ignored by a one-process run.
struct DistributedSection {
  // A collective (gradient all-reduce, gathers, barriers) that takes longer than this ends the
  // job with an error naming the rank and the collective, instead of hanging it.
  double timeout_seconds = 600;
  template <class V> void visit(V& v) { v("timeout_seconds", timeout_seconds); }
};

// sft.conditional: conditional training (Korbak et al. 2023, DESIGN 6).
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
    v("scorer", scorer); v("score_key", score_key); v("threshold", threshold);
    v("threshold_percentile", threshold_percentile); 
    v("unconditioned_fraction", unconditioned_fraction); v("min_sentence_chars", min_sentence_chars);
    v("mask_control_tokens", mask_control_tokens); v("embedding_noise_std", embedding_noise_std);
  }
};

// sft.context_indicator: the context-dependency indicator (Wang et al., DESIGN 6).
struct ContextIndicatorSection {
  std::string seed_model = "";  // model directory that scores the turns ("" = model.path)
  int64_t layer = -1;           // attention layer scored (-1 = the middle: num_layers / 2)
  double beta = 0.6;            // score > beta flags the turn
  double embedding_noise_std = 1e-3;
  template <class V> void visit(V& v) {
    v("seed_model", seed_model); v("layer", layer); v("beta", beta); 
    v("embedding_noise_std", embedding_noise_std);
  }
};

struct SftSection {
  std::string mode = "plain";             // plain | conditional | context_indicator
  // Rows: {prompt (data.prompt_key), response}, {text}, or {messages: [{role, content}...]}.
  std::string response_key = "response";  // JSONL field holding the target text
  std::string text_key = "text";          // JSONL field of plain-text rows (loss on every token)
  int64_t batch_size = 32;                // sequences per optimizer step
  // false: loss on the response / assistant turns only; true: on every token after the first.
  bool loss_on_prompt = false;
  ConditionalSection conditional;
  ContextIndicatorSection context_indicator;
  template <class V> void visit(V& v) {
    v("mode", mode); v("response_key", response_key); v("text_key", text_key); v("batch_size", batch_size);
    v("loss_on_prompt", loss_on_prompt);
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
// Hash (hex) of everything that shapes training: the resolved config without logging.*.
std::string train_config_hash(const TrainConfig& config);
// Static checks; each error names the key path and what is allowed.
void validate_train_config(const TrainConfig& config, ConfigUse use = ConfigUse::rl);

}  // namespace anchor
