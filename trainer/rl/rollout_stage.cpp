#include "trainer/rl/rollout_stage.h"

#include <torch/torch.h>

#include <chrono>

#include "trainer/common/error.h"
#include "trainer/rl/step_seed.h"
#include "trainer/rollout/sampler.h"
#include "trainer/rollout/generation_control.h"

namespace anchor {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Kept rows of the step as flat pieces: real tokens only (row-major), lengths per row. Flat
// pieces of any number of rows concatenate and gather across ranks without padding.
struct FlatRows {
  std::vector<at::Tensor> prompt_lengths, response_lengths;  // [n] int64
  std::vector<at::Tensor> prompt_tokens, response_tokens;    // [sum] int64
  std::vector<at::Tensor> logprobs;                          // [sum response] float
  std::vector<at::Tensor> scores;                            // [n * (2 + C)] double: reward, correct, components

  void add(const at::Tensor& prompt_ids, const at::Tensor& prompt_mask, const at::Tensor& response_ids,
           const at::Tensor& response_mask, const at::Tensor& sampling_logprobs, const at::Tensor& row_scores) {
    prompt_lengths.push_back(prompt_mask.sum(1));
    response_lengths.push_back(response_mask.sum(1));
    prompt_tokens.push_back(prompt_ids.masked_select(prompt_mask));
    response_tokens.push_back(response_ids.masked_select(response_mask));
    logprobs.push_back(sampling_logprobs.masked_select(response_mask));
    scores.push_back(row_scores.reshape({-1}));
  }
};

// {[n, width] values, mask} from per-row lengths and the row-major real entries, padded on the
// left (prompts: every row ends in the last column) or on the right (responses).
std::pair<at::Tensor, at::Tensor> padded(const at::Tensor& lengths, const at::Tensor& flat, double pad, bool left) {
  const int64_t width = std::max<int64_t>(1, lengths.numel() ? lengths.max().item<int64_t>() : 1);
  const at::Tensor columns = torch::arange(width, torch::kLong).unsqueeze(0);
  const at::Tensor mask = left ? columns.ge((width - lengths).unsqueeze(1)) : columns.lt(lengths.unsqueeze(1));
  return {torch::full(mask.sizes(), pad, flat.options()).masked_scatter(mask, flat), mask};
}

}  // namespace

ScoredRollouts ScoredRollouts::select(const at::Tensor& rows) const {
  ScoredRollouts out = *this;
  out.batch = select_rows(batch, rows);
  out.sampling_logprobs = sampling_logprobs.index_select(0, rows).slice(1, 0, out.batch.response_ids.size(1));
  out.rewards = rewards.index_select(0, rows);
  out.correct = correct.index_select(0, rows);
  out.components = components.index_select(0, rows);
  return out;
}

at::Tensor informative_groups(const at::Tensor& rewards, int64_t G) {
  AR_CHECK(G >= 1 && rewards.size(0) % G == 0, "informative_groups: ", rewards.size(0), " rewards are not groups of ",
           G);
  const at::Tensor r = rewards.view({-1, G});
  return r.ne(r.select(1, 0).unsqueeze(1)).any(1);
}

ScoredRollouts collect_scored_rollouts(const RolloutContext& ctx, data::DataCursor& cursor, int64_t step) {
  const TrainConfig& cfg = ctx.config;
  const Tokenizer& tokenizer = ctx.policy.tokenizer;
  const int64_t G = cfg.rollout.samples_per_prompt;
  const int64_t C = static_cast<int64_t>(ctx.reward.columns().size());
  const int64_t pad_id = tokenizer.padding_id();
  const auto long_cpu = torch::TensorOptions().dtype(torch::kLong);
  const GenerationControl control = generation_control(
      cfg.rollout.control, cfg.rollout.indicator, tokenizer, "rollout.control", "rollout.indicator");
  ScoredRollouts out;
  FlatRows kept;  // global, in round order then rank order (= the order of one process)
  for (int64_t round = 0; round < cfg.algo.max_sampling_rounds; ++round) {
    const int64_t need = cfg.rollout.prompts_per_step - out.groups_kept;
    if (need <= 0) break;
    // The same prompts on every rank; this rank samples groups [first, last).
    const std::vector<size_t> examples = cursor.next(static_cast<size_t>(need));
    const auto [first, last] = dist::shard_range(need, ctx.comm.rank(), ctx.comm.size());
    FlatRows mine;
    if (last > first) {
      std::vector<std::vector<int64_t>> prompts;
      std::vector<std::string> prompt_texts;
      SamplingParams params;
      for (int64_t p = first; p < last; ++p) {
        const size_t e = examples[static_cast<size_t>(p)];
        ControlledPrompt prompt =
            controlled_prompt(tokenizer, ctx.prompt_template, ctx.prompts[e].conversation(), control);
        prompt_texts.push_back(std::move(prompt.text));
        for (int64_t g = 0; g < G; ++g) {
          prompts.push_back(prompt.ids);
          params.streams.push_back(p * G + g);
        }
      }
      params.max_new_tokens = cfg.rollout.max_new_tokens;
      params.temperature = cfg.rollout.temperature;
      params.top_p = cfg.rollout.top_p;
      params.top_k = cfg.rollout.top_k;
      params.stop_strings = cfg.rollout.stop;
      set_control_sampling(tokenizer, control, params);
      params.seed = derive_seed(cfg.train.seed, step, static_cast<uint64_t>(round));
      auto t0 = Clock::now();
      const RolloutBatch rollout = generate_in_chunks(ctx.policy.model, tokenizer, prompts, params, ctx.rows_per_generate);
      out.rollout_seconds += seconds_since(t0);
      out.generated_tokens += rollout.generated_tokens;

      t0 = Clock::now();
      const int64_t M = static_cast<int64_t>(prompts.size());
      const at::Tensor lengths = rollout.response_mask.sum(1);
      at::Tensor scores = torch::zeros({M, 2 + C}, torch::kDouble);
      auto s = scores.accessor<double, 2>();
      // One batch for the reward: an external program answers the rank's rows in one exchange.
      std::vector<rewards::RewardInput> inputs;
      inputs.reserve(static_cast<size_t>(M));
      for (int64_t row = 0; row < M; ++row) {
        const size_t p = static_cast<size_t>(row / G);
        const size_t e = examples[static_cast<size_t>(first) + p];
        const bool truncated = rollout.finish_reasons[static_cast<size_t>(row)] == FinishReason::length;
        inputs.push_back({prompt_texts[p], rollout.response_texts[static_cast<size_t>(row)], ctx.prompts[e].row,
                          lengths[row].item<int64_t>(), cfg.rollout.max_new_tokens, truncated});
      }
      const std::vector<rewards::RewardBreakdown> breakdowns = ctx.reward.score_batch(inputs);
      for (int64_t row = 0; row < M; ++row) {
        const rewards::RewardBreakdown& b = breakdowns[static_cast<size_t>(row)];
        s[row][0] = b.total;
        s[row][1] = b.correct ? 1.0 : 0.0;
        for (int64_t c = 0; c < C; ++c) s[row][2 + c] = b.components[static_cast<size_t>(c)].value;
      }
      at::Tensor keep = torch::ones({M / G}, torch::kBool);
      if (cfg.algo.dynamic_sampling) keep = informative_groups(scores.select(1, 0), G);
      const at::Tensor rows = keep.repeat_interleave(G).nonzero().squeeze(1);
      mine.add(rollout.prompt_ids.index_select(0, rows), rollout.prompt_mask.index_select(0, rows),
               rollout.response_ids.index_select(0, rows), rollout.response_mask.index_select(0, rows),
               rollout.sampling_logprobs.index_select(0, rows), scores.index_select(0, rows));
      out.reward_seconds += seconds_since(t0);
    } else {
      const at::Tensor none = torch::zeros({0, 1}, long_cpu);
      mine.add(none, none.to(torch::kBool), none, none.to(torch::kBool), torch::zeros({0, 1}, torch::kFloat),
               torch::zeros({0, 2 + C}, torch::kDouble));
    }
    // Every rank learns the round's kept groups (the decision uses global counts).
    dist::Communicator& comm = ctx.comm;
    kept.prompt_lengths.push_back(comm.all_gather(mine.prompt_lengths[0], "kept prompt lengths"));
    kept.response_lengths.push_back(comm.all_gather(mine.response_lengths[0], "kept response lengths"));
    kept.prompt_tokens.push_back(comm.all_gather(mine.prompt_tokens[0], "kept prompt tokens"));
    kept.response_tokens.push_back(comm.all_gather(mine.response_tokens[0], "kept response tokens"));
    kept.logprobs.push_back(comm.all_gather(mine.logprobs[0], "kept sampling log-probs"));
    kept.scores.push_back(comm.all_gather(mine.scores[0], "kept scores"));
    out.groups_seen += need;
    out.groups_kept += kept.prompt_lengths.back().size(0) / G;
    if (!cfg.algo.dynamic_sampling) break;
  }
  // The global batch, padded as one process pads it (prompts left, responses right).
  const at::Tensor prompt_lengths = torch::cat(kept.prompt_lengths), response_lengths = torch::cat(kept.response_lengths);
  const double pad = static_cast<double>(pad_id);
  std::tie(out.batch.prompt_ids, out.batch.prompt_mask) = padded(prompt_lengths, torch::cat(kept.prompt_tokens), pad, true);
  std::tie(out.batch.response_ids, out.batch.response_mask) =
      padded(response_lengths, torch::cat(kept.response_tokens), pad, false);
  out.sampling_logprobs = padded(response_lengths, torch::cat(kept.logprobs), 0.0, false).first;
  const at::Tensor scores = torch::cat(kept.scores).view({-1, 2 + C});
  out.rewards = scores.select(1, 0).to(torch::kFloat);
  out.correct = scores.select(1, 1).gt(0.5);
  out.components = scores.slice(1, 2).contiguous();
  return out;
}

}  // namespace anchor
