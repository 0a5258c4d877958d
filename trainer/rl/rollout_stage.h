// Stages 1-2 of the RL step (docs/design.md §2): sample G responses for each prompt and score them.
// With dynamic sampling, groups whose rewards are all equal carry no signal and are replaced
// by fresh prompts, round after round, until the step has rollout.prompts_per_step groups or
// algo.max_sampling_rounds is reached.
//
// Data parallel: each round's prompts are sharded across ranks by whole groups; every rank
// samples and scores its shard, and the kept groups are gathered (token ids and scores, a few
// kB) so that every rank holds the step's global batch in the order one process would have
// produced it. Training then re-shards that batch (step_shard.h), so dynamic sampling never
// leaves one rank with all the work.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "data/chat_template.h"
#include "data/prompt_dataset.h"
#include "rewards/reward_function.h"
#include "trainer/config/train_config.h"
#include "trainer/distributed/communicator.h"
#include "trainer/model/pretrained.h"
#include "trainer/rollout/step_batch.h"

namespace anchor {

struct ScoredRollouts {
  StepBatch batch;               // [N, P] left-padded prompts / [N, R] right-padded responses
  at::Tensor sampling_logprobs;  // [N, R] float: the sampler's log-probs, 0 on padding
  at::Tensor rewards;            // [N] float
  at::Tensor correct;            // [N] bool
  at::Tensor components;         // [N, C] double, one column per reward component
  int64_t groups_seen = 0;       // groups sampled over all rounds (every rank)
  int64_t groups_kept = 0;       // N / G
  int64_t generated_tokens = 0;  // sampled by this rank
  double rollout_seconds = 0, reward_seconds = 0;

  int64_t size() const { return rewards.size(0); }
  // The rows `rows` [n] int64, padding columns shared by none of them trimmed.
  ScoredRollouts select(const at::Tensor& rows) const;
};

// [M / G] bool: whether the rewards of group g (rows g*G .. g*G+G-1 of rewards [M]) differ.
at::Tensor informative_groups(const at::Tensor& rewards, int64_t group_size);

// Everything stages 1-2 read that is fixed for the run.
struct RolloutContext {
  const Pretrained& policy;
  const data::PromptDataset& prompts;
  const data::ChatTemplate& prompt_template;
  const rewards::CompositeReward& reward;
  const TrainConfig& config;
  dist::Communicator& comm;
  int64_t rows_per_generate = 0;  // sampling chunk of the memory plan (0 = all rows at once)
};

// The step's scored rollouts; `cursor` (identical on every rank) advances by the prompts used.
// Row r of round k samples from stream r of seed derive_seed(train.seed, step, k), whichever
// rank samples it.
ScoredRollouts collect_scored_rollouts(const RolloutContext& context, data::DataCursor& cursor, int64_t step);

}  // namespace anchor
