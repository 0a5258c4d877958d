#include "trainer/sft/sft_trainer.h"

#include <torch/torch.h>

#include <filesystem>
#include <optional>

#include "data/prompt_dataset.h"
#include "rewards/reward_function.h"
#include "trainer/algo/loss_aggregation.h"
#include "trainer/common/error.h"
#include "trainer/common/file_util.h"
#include "trainer/common/log.h"
#include "trainer/config/train_config.h"
#include "trainer/distributed/communicator.h"
#include "trainer/model/response_statistics.h"
#include "trainer/rollout/evaluation.h"
#include "trainer/rollout/step_batch.h"
#include "trainer/run/training_run.h"
#include "trainer/sft/sft_data.h"

namespace anchor {
namespace {

// One optimizer step on the next sft.batch_size examples: context tokens are inputs only,
// target tokens carry the loss where their loss flag is set.
StepReport sft_step(TrainingRun& run, const sft::PreparedSft& prepared, int64_t step, nlohmann::json line) {
  const TrainConfig& cfg = run.config();
  Pretrained& policy = run.policy();
  StepReport report{std::move(line), "", ""};
  run.memory_phase("update");
  const std::vector<size_t> rows = run.cursor().next(static_cast<size_t>(cfg.sft.batch_size));
  std::vector<const std::vector<int64_t>*> prompt_rows, target_rows;
  for (size_t r : rows) {
    prompt_rows.push_back(&prepared.examples[r].prompt_ids);
    target_rows.push_back(&prepared.examples[r].target_ids);
  }
  const StepBatch batch = pad_sequences(prompt_rows, target_rows, std::max<int64_t>(policy.tokenizer.eos_id(), 0));
  std::vector<uint8_t> loss_flags(static_cast<size_t>(batch.response_ids.numel()), 0);
  const int64_t width = batch.response_ids.size(1);
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& flags = prepared.examples[rows[i]].target_loss;
    std::copy(flags.begin(), flags.end(), loss_flags.begin() + static_cast<long>(i) * width);
  }
  const at::Tensor loss_mask =
      torch::from_blob(loss_flags.data(), batch.response_ids.sizes(), torch::kUInt8).to(torch::kBool);

  run.optimizer().zero_grad();
  const ResponseStatistics st = response_statistics(policy.model, batch.prompt_ids, batch.prompt_mask,
                                                    batch.response_ids, batch.response_mask, ResponseStatisticsOptions{});
  const at::Tensor mask = batch.response_mask.logical_and(loss_mask).to(st.logprobs.device());
  const double tokens = mask.sum().item<double>();
  at::Tensor loss = aggregate_loss(-st.logprobs, mask, LossAggregation::token_mean, tokens, 0);
  loss.backward();
  run.optimizer().after_backward();
  const double loss_value = loss.item<double>();
  const double grad_norm = clip_and_step(run.optimizer(), cfg.optim.grad_clip, step, loss_value, report.nonfinite);

  const double tokens_per_second = tokens / std::max(run.seconds_in_step(), 1e-9);
  report.line["loss"] = loss_value;
  report.line["tokens"] = tokens;
  report.line["grad_norm"] = grad_norm;
  report.line["perf"]["tokens_per_second"] = tokens_per_second;
  report.progress = str_cat("loss ", loss_value, " | lr ", report.line["lr"].get<double>(), " | ",
                            static_cast<int64_t>(tokens_per_second), " tok/s");
  return report;
}

}  // namespace

int run_sft_training(const TrainRunOptions& options) {
  TrainingRun run(options, ConfigUse::sft, "sft", dist::Communicator::world());
  const TrainConfig& cfg = run.config();
  Pretrained& policy = run.policy();

  // The training examples of sft.mode (trainer/sft/sft_data.h); adds the mode's tokens to the
  // policy before the optimizer sees its parameters.
  const data::ChatTemplate prompt_template = chat_template_for(policy, cfg.data.template_, "data.template");
  const sft::PreparedSft prepared = sft::prepare_sft_data(cfg, sft::load_sft_dataset(cfg), policy, prompt_template);
  if (run.state().step == 0 && run.writer()) {  // what this run trains on, for inspection
    const std::filesystem::path dir = run.run_path();
    sft::write_prepared_sft((dir / "sft_data.jsonl").string(), prepared, policy.tokenizer);
    write_text_file_atomic((dir / "sft_data_summary.json").string(), prepared.summary.dump(2) + "\n");
  }
  log::info(str_cat("sft data (", enum_name(cfg.sft.mode), "): ", prepared.summary.dump()));
  std::optional<data::PromptDataset> eval_set;
  std::optional<rewards::CompositeReward> reward;
  if (!cfg.data.eval.empty() && !cfg.reward.components.empty()) {
    eval_set = data::PromptDataset::load_jsonl(cfg.data.eval, cfg.data.prompt_key);
    reward.emplace(cfg.reward.components);
  }

  run.begin(prepared.examples.size(), [&](int64_t step) -> nlohmann::json {
    if (!eval_set) return nullptr;
    return evaluate_for_run(policy, *eval_set, prompt_template, *reward, cfg, step, run.memory_plan().eval_chunk_rows);
  }, /*data_parallel_gradients=*/false);
  for (int64_t step = run.first_step(); step <= cfg.train.steps; ++step) {
    StepReport report = sft_step(run, prepared, step, run.begin_step(step));
    if (!run.end_step(step, std::move(report))) break;
  }
  return 0;
}

}  // namespace anchor
