#include "trainer/sft/sft_trainer.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>

#include "data/prompt_dataset.h"
#include "rewards/reward_function.h"
#include "trainer/algo/loss_aggregation.h"
#include "trainer/checkpoint/run_setup.h"
#include "trainer/checkpoint/training_checkpoint.h"
#include "trainer/common/device.h"
#include "trainer/common/error.h"
#include "trainer/common/file_util.h"
#include "trainer/common/log.h"
#include "trainer/common/stop_request.h"
#include "trainer/common/test_hooks.h"
#include "trainer/config/train_config.h"
#include "trainer/optim/lr_schedule.h"
#include "trainer/rl/evaluation.h"
#include "trainer/rl/policy_forward.h"
#include "trainer/rl/step_batch.h"
#include "trainer/sft/sft_data.h"

namespace anchor {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

}  // namespace

int run_sft_training(const TrainRunOptions& opt) {
  RunStart start = start_run(opt, ConfigUse::sft, "sft");
  const TrainConfig& cfg = start.config;
  TrainerState& state = start.state;
  RunDirectory& run = *start.run;
  const at::TensorOptions options = resolve_device(cfg.model.device, cfg.model.dtype, cfg.model.threads, "model");
  Pretrained policy = load_pretrained(start.weights_from, options.dtype(torch::kFloat));  // fp32 master weights
  policy.model.set_requires_grad(true);
  policy.model.set_compute_dtype(options.dtype().toScalarType());
  policy.model.set_activation_checkpointing(cfg.model.activation_checkpointing);

  // The training examples of sft.mode (trainer/sft/sft_data.h); adds the mode's tokens to the
  // policy before the optimizer sees its parameters.
  const data::ChatTemplate prompt_template = chat_template_for(policy, cfg.data.template_, "data.template");
  sft::PreparedSft prepared = sft::prepare_sft_data(cfg, sft::load_sft_dataset(cfg), policy, prompt_template);
  if (state.step == 0 && start.run) {  // what this run trains on, for inspection
    sft::write_prepared_sft((std::filesystem::path(run.path()) / "sft_data.jsonl").string(), prepared,
                            policy.tokenizer);
    write_text_file_atomic((std::filesystem::path(run.path()) / "sft_data_summary.json").string(),
                           prepared.summary.dump(2) + "\n");
  }
  log::info(str_cat("sft data (", cfg.sft.mode, "): ", prepared.summary.dump()));
  std::optional<data::PromptDataset> eval_set;
  std::optional<rewards::CompositeReward> reward;
  if (!cfg.data.eval.empty() && !cfg.reward.components.empty()) {
    eval_set = data::PromptDataset::load_jsonl(cfg.data.eval, cfg.data.prompt_key);
    reward.emplace(cfg.reward.components);
  }

  data::DataCursor cursor(prepared.examples.size(), cfg.train.seed, cfg.data.shuffle);
  torch::optim::AdamW optimizer = make_adamw(policy.model, cfg.optim);
  if (!start.checkpoint_dir.empty()) {
    cursor.restore(state.data_epoch, state.data_position);
    restore_training_checkpoint(start.checkpoint_dir, policy, optimizer);
  }
  run.open_metrics(state.step);
  auto run_eval = [&](int64_t step) -> nlohmann::json {
    if (!eval_set) return nullptr;
    return evaluate_for_run(policy, *eval_set, prompt_template, *reward, cfg, step);
  };
  if (state.step == 0) {
    nlohmann::json line = {{"step", 0}};
    if (auto e = run_eval(0); !e.is_null()) line["eval"] = e;
    run.write_metrics(line);
  }

  const int64_t pad_id = std::max<int64_t>(policy.tokenizer.eos_id(), 0);
  install_stop_handlers();  // SIGTERM / SIGINT: finish the step, checkpoint, exit 0
  int64_t skipped_total = state.extra.value("skipped_steps", int64_t{0});
  int64_t skipped_in_a_row = state.extra.value("consecutive_skips", int64_t{0});
  const auto run_start = Clock::now();
  const int64_t first_step = state.step;
  for (int64_t step = state.step + 1; step <= cfg.train.steps; ++step) {
    const auto step_start = Clock::now();
    // Batch: context tokens (never targets) and target tokens with their loss mask.
    const std::vector<size_t> rows = cursor.next(static_cast<size_t>(cfg.sft.batch_size));
    std::vector<const std::vector<int64_t>*> prompt_rows, target_rows;
    for (size_t r : rows) {
      prompt_rows.push_back(&prepared.examples[r].prompt_ids);
      target_rows.push_back(&prepared.examples[r].target_ids);
    }
    const StepBatch batch = pad_sequences(prompt_rows, target_rows, pad_id);
    std::vector<uint8_t> loss_flags(static_cast<size_t>(batch.response_ids.numel()), 0);
    const int64_t width = batch.response_ids.size(1);
    for (size_t i = 0; i < rows.size(); ++i) {
      const auto& flags = prepared.examples[rows[i]].target_loss;
      std::copy(flags.begin(), flags.end(), loss_flags.begin() + static_cast<long>(i) * width);
    }
    const at::Tensor loss_mask =
        torch::from_blob(loss_flags.data(), batch.response_ids.sizes(), torch::kUInt8).to(torch::kBool);
    const double lr = learning_rate_at(step - 1, cfg.train.steps, cfg.optim);
    set_learning_rate(optimizer, lr);
    optimizer.zero_grad();
    const ResponseStatistics st =
        response_statistics(policy.model, batch.prompt_ids, batch.prompt_mask, batch.response_ids,
                            batch.response_mask, 1.0, false);
    const at::Tensor mask = batch.response_mask.logical_and(loss_mask).to(st.logprobs.device());
    const double tokens = mask.sum().item<double>();
    at::Tensor loss = aggregate_loss(-st.logprobs, mask, LossAggregation::token_mean, tokens, 0);
    loss.backward();
    if (test_poisoned(step, "gradient")) {
      torch::NoGradGuard no_grad;
      policy.model.parameters().front().mutable_grad().view({-1})[0] = std::numeric_limits<float>::quiet_NaN();
    }
    // As in the RL trainer: a NaN / Inf in the loss or the gradients skips the update.
    const double grad_norm = torch::nn::utils::clip_grad_norm_(
        policy.model.parameters(),
        cfg.optim.grad_clip > 0 ? cfg.optim.grad_clip : std::numeric_limits<double>::infinity());
    const double loss_value = loss.item<double>();
    std::string nonfinite;
    if (!std::isfinite(grad_norm)) {
      nonfinite = std::isfinite(loss_value) ? "gradients" : "loss";
      optimizer.zero_grad();
      ++skipped_total;
      ++skipped_in_a_row;
      log::warn(str_cat("sft step ", step, ": non-finite value in the ", nonfinite,
                        " (NaN or Inf); optimizer step skipped (", skipped_in_a_row, " in a row, at most ",
                        cfg.train.max_consecutive_skips, ")"));
    } else {
      optimizer.step();
      skipped_in_a_row = 0;
    }
    state.extra["skipped_steps"] = skipped_total;
    state.extra["consecutive_skips"] = skipped_in_a_row;
    const double step_time = seconds_since(step_start);

    nlohmann::json line = {{"step", step}, {"epoch", cursor.epoch()}, {"lr", lr}, {"loss", loss_value},
                           {"tokens", tokens}, {"grad_norm", grad_norm}, {"skipped_steps", skipped_total},
                           {"perf", {{"step_seconds", step_time}, {"tokens_per_second", tokens / step_time}}}};
    if (!nonfinite.empty()) line["skipped"] = nonfinite;
    const bool last = step == cfg.train.steps;
    if ((cfg.train.eval_every > 0 && step % cfg.train.eval_every == 0) || last) {
      if (auto e = run_eval(step); !e.is_null()) line["eval"] = e;
    }
    run.write_metrics(line);
    if (cfg.logging.progress && (step % 10 == 0 || last)) {
      const double per_step = seconds_since(run_start) / static_cast<double>(step - first_step);
      log::info(str_cat("sft step ", step, "/", cfg.train.steps, " | loss ", line["loss"].get<double>(), " | lr ", lr,
                        " | ", static_cast<int64_t>(tokens / step_time), " tok/s | ETA ",
                        static_cast<int64_t>(per_step * static_cast<double>(cfg.train.steps - step)), " s"));
    }
    AR_CHECK(skipped_in_a_row < cfg.train.max_consecutive_skips, "sft step ", step, ": ", skipped_in_a_row,
             " optimizer steps in a row skipped for non-finite values (train.max_consecutive_skips); stopping. "
             "The weights were never updated with them: the newest checkpoint is intact");
    const bool signalled = stop_requested();
    const bool stop_now = (opt.stop_after_step > 0 && step == opt.stop_after_step) || (signalled && !last);
    if (last || (cfg.checkpoint.every > 0 && step % cfg.checkpoint.every == 0) || stop_now) {
      state.step = step;
      state.data_epoch = cursor.epoch();
      state.data_position = cursor.position();
      state.config_hash = start.config_hash;
      log::info(str_cat("checkpoint ", save_training_checkpoint(cfg.logging.run_dir, state, policy, optimizer,
                                                                cfg.checkpoint.keep_last)));
    }
    if (stop_now) {
      log::info(signalled ? str_cat("stop signal: stopped after sft step ", step,
                                    " with a checkpoint; continue with --resume latest")
                          : str_cat("stopping after sft step ", step, " (--stop-after-step)"));
      return 0;
    }
  }
  return 0;
}

}  // namespace anchor
