// Prompts longer than the model can answer. A JSONL row of a few million characters used to
// be sampled as is (out of memory in train, a 16 TB allocation in eval); a prompt longer than
// the model's positions was accepted silently. Every dataset is now checked when it is loaded.
#pragma once

#include <cstdint>
#include <string>

#include "data/chat_template.h"
#include "data/prompt_dataset.h"
#include "trainer/model/llama_config.h"
#include "trainer/model/tokenizer.h"

namespace anchor {

struct PromptLimit {
  int64_t max_tokens = 0;  // longest allowed prompt (rendered, special tokens included)
  std::string why;         // where the limit comes from, for messages
};

// min(configured (0 = none), the model's positions - max_new_tokens); an error when the model
// cannot fit max_new_tokens at all.
PromptLimit prompt_limit(const LlamaConfig& model, int64_t max_new_tokens, int64_t configured);

// The dataset without rows over the limit. skip = false: the first such row is an error naming
// file:line, its length and the limit (`setting` names the switch that would skip instead);
// skip = true: they are dropped and counted in the log; an error if none is left.
data::PromptDataset fit_prompts(const data::PromptDataset& dataset, const Tokenizer& tokenizer,
                                const data::ChatTemplate& chat, const PromptLimit& limit, bool skip,
                                const std::string& setting);

}  // namespace anchor
