#include "trainer/rl/prompt_limits.h"

#include "trainer/common/error.h"
#include "trainer/common/log.h"
#include "trainer/model/pretrained.h"

namespace anchor {

PromptLimit prompt_limit(const LlamaConfig& model, int64_t max_new_tokens, int64_t configured) {
  const int64_t room = model.max_position_embeddings - max_new_tokens;
  AR_CHECK(room >= 1, "the model has ", model.max_position_embeddings, " positions: no room for a prompt and ",
           max_new_tokens, " new tokens (lower rollout.max_new_tokens / --max-new-tokens)");
  PromptLimit l{room, str_cat("the model's ", model.max_position_embeddings, " positions minus ", max_new_tokens,
                              " new tokens")};
  if (configured > 0 && configured < room) l = {configured, "data.max_prompt_tokens"};
  return l;
}

data::PromptDataset fit_prompts(const data::PromptDataset& dataset, const Tokenizer& tokenizer,
                                const data::ChatTemplate& chat, const PromptLimit& limit, bool skip,
                                const std::string& setting) {
  std::vector<size_t> keep;
  int64_t longest_dropped = 0;
  for (size_t i = 0; i < dataset.size(); ++i) {
    const data::Example& ex = dataset[i];
    const std::string text = chat.render(ex.conversation(), true);
    // Every token covers at least one byte (plus a BOS): short texts need no encoding.
    int64_t tokens = static_cast<int64_t>(text.size()) + 1;
    if (tokens > limit.max_tokens) tokens = static_cast<int64_t>(encode_prompt(tokenizer, chat, text).size());
    if (tokens <= limit.max_tokens) {
      keep.push_back(i);
      continue;
    }
    AR_CHECK(skip, dataset.path(), ":", ex.line, ": the prompt has ", tokens, " tokens, more than ", limit.max_tokens,
             " (", limit.why, ")", setting.empty() ? "" : "; shorten it, or set " + setting + " to drop such rows");
    longest_dropped = std::max(longest_dropped, tokens);
  }
  const size_t dropped = dataset.size() - keep.size();
  if (dropped == 0) return dataset;
  AR_CHECK(!keep.empty(), dataset.path(), ": every one of its ", dataset.size(), " prompts is longer than ",
           limit.max_tokens, " tokens (", limit.why, ")");
  log::warn(str_cat(dataset.path(), ": skipped ", dropped, " of ", dataset.size(), " prompts longer than ",
                    limit.max_tokens, " tokens (", limit.why, "; the longest had ", longest_dropped, ")"));
  return dataset.subset(keep);
}

}  // namespace anchor
