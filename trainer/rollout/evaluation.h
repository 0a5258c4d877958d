// Held-out evaluation: k sampled answers per prompt, scored by the reward's correctness
// components. accuracy = mean over all samples; pass@k = share of prompts with at least one
// correct sample among the k.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/prompt_dataset.h"
#include "rewards/reward_function.h"
#include "trainer/distributed/communicator.h"
#include "trainer/model/pretrained.h"
#include "trainer/rollout/evaluation_rows.h"
#include "trainer/rollout/generation_control.h"

namespace anchor {

struct EvalOptions {
  int64_t samples_per_prompt = 4;
  double temperature = 1.0;  // 0 = greedy
  double top_p = 1.0;
  int64_t max_new_tokens = 64;
  std::vector<std::string> stop;
  uint64_t seed = 0;
  int64_t limit = 0;          // first N prompts (0 = all)
  int64_t batch_sequences = kMaxEvalRowsPerCall;
  // Data-parallel evaluation: each rank samples its shard of the prompts and the counts are
  // summed over ranks (nullptr: all prompts here). Sample i of prompt p draws from stream
  // p * k + i, so the result does not depend on the number of ranks or the batch size.
  dist::Communicator* comm = nullptr;
  // A model trained by an SFT mode: prompts end with <|good|> / <|bad|>, user turns get [IND].
  GenerationControl control;
};

struct EvalResult {
  double accuracy = 0;
  double accuracy_stderr = 0;  // binomial standard error of `accuracy` over all samples
  double pass_at_k = 0;
  double mean_reward = 0;
  double mean_response_tokens = 0;
  int64_t prompts = 0;
  int64_t samples = 0;
};

EvalResult evaluate(const LlamaModel& model, const Tokenizer& tokenizer, const data::PromptDataset& dataset,
                    const data::ChatTemplate& prompt_template, const rewards::CompositeReward& reward,
                    const EvalOptions& options);


}  // namespace anchor
