#include "trainer/rollout/evaluation.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>

#include "trainer/common/error.h"
#include "trainer/common/log.h"

#include "trainer/rollout/sampler.h"

namespace anchor {

EvalResult evaluate(const LlamaModel& model, const Tokenizer& tokenizer, const data::PromptDataset& dataset,
                    const data::ChatTemplate& prompt_template, const rewards::CompositeReward& reward,
                    const EvalOptions& o) {
  const size_t n_prompts = o.limit > 0 ? std::min<size_t>(dataset.size(), static_cast<size_t>(o.limit)) : dataset.size();
  const size_t k = static_cast<size_t>(o.samples_per_prompt);
  const size_t prompts_per_batch = std::max<size_t>(1, static_cast<size_t>(o.batch_sequences) / k);
  EvalResult r;
  int64_t correct = 0, prompts_solved = 0, tokens = 0;
  double reward_sum = 0;
  const auto [first, last] = o.comm ? dist::shard_range(static_cast<int64_t>(n_prompts), o.comm->rank(), o.comm->size())
                                    : std::pair<int64_t, int64_t>{0, static_cast<int64_t>(n_prompts)};
  for (size_t start = static_cast<size_t>(first); start < static_cast<size_t>(last); start += prompts_per_batch) {
    const size_t end = std::min(static_cast<size_t>(last), start + prompts_per_batch);
    std::vector<std::vector<int64_t>> prompts;
    std::vector<std::string> texts;
    for (size_t i = start; i < end; ++i) {
      ControlledPrompt prompt = controlled_prompt(tokenizer, prompt_template, dataset[i].conversation(), o.control);
      for (size_t s = 0; s < k; ++s) prompts.push_back(prompt.ids);
      texts.push_back(std::move(prompt.text));
    }
    SamplingParams params;
    params.max_new_tokens = o.max_new_tokens;
    params.temperature = o.temperature;
    params.top_p = o.top_p;
    params.stop_strings = o.stop;
    set_control_sampling(tokenizer, o.control, params);
    params.seed = o.seed * 7919;
    for (size_t i = start; i < end; ++i)
      for (size_t s = 0; s < k; ++s) params.streams.push_back(static_cast<int64_t>(i * k + s));
    const RolloutBatch batch = generate(model, tokenizer, prompts, params);
    const at::Tensor lengths = batch.response_mask.sum(1);
    std::vector<rewards::RewardInput> inputs;
    for (size_t i = start; i < end; ++i)
      for (size_t s = 0; s < k; ++s) {
        const size_t row = (i - start) * k + s;
        inputs.push_back({texts[i - start], batch.response_texts[row], dataset[i].row,
                          lengths[static_cast<int64_t>(row)].item<int64_t>(), o.max_new_tokens,
                          batch.finish_reasons[row] == FinishReason::length});
      }
    const std::vector<rewards::RewardBreakdown> scored = reward.score_batch(inputs);  // one exchange per chunk
    for (size_t i = start; i < end; ++i) {
      bool any = false;
      for (size_t s = 0; s < k; ++s) {
        const size_t row = (i - start) * k + s;
        const int64_t len = inputs[row].response_tokens;
        const rewards::RewardBreakdown& b = scored[row];
        correct += b.correct;
        any = any || b.correct;
        reward_sum += b.total;
        tokens += len;
      }
      prompts_solved += any;
    }
  }
  if (o.comm && o.comm->distributed()) {
    at::Tensor sums = torch::tensor({static_cast<double>(correct), static_cast<double>(prompts_solved),
                                     static_cast<double>(tokens), reward_sum}, torch::kDouble);
    o.comm->all_reduce_sum(sums, "eval counts");
    correct = static_cast<int64_t>(sums[0].item<double>());
    prompts_solved = static_cast<int64_t>(sums[1].item<double>());
    tokens = static_cast<int64_t>(sums[2].item<double>());
    reward_sum = sums[3].item<double>();
  }
  r.prompts = static_cast<int64_t>(n_prompts);
  r.samples = r.prompts * static_cast<int64_t>(k);
  if (r.samples == 0) return r;
  r.accuracy = static_cast<double>(correct) / static_cast<double>(r.samples);
  r.accuracy_stderr = std::sqrt(r.accuracy * (1 - r.accuracy) / static_cast<double>(r.samples));
  r.pass_at_k = static_cast<double>(prompts_solved) / static_cast<double>(r.prompts);
  r.mean_reward = reward_sum / static_cast<double>(r.samples);
  r.mean_response_tokens = static_cast<double>(tokens) / static_cast<double>(r.samples);
  return r;
}


}  // namespace anchor
