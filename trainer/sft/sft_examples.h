// SFT rows as token sequences with a per-token loss mask, for any tokenizer and chat template.
//   prompt_response  prompt ids = the prompt rendered with the template (generation prompt
//                    included), targets = the response + EOS: exactly what a rollout of the
//                    prompt would sample, so SFT and RL see the same sequence.
//   messages         the whole conversation rendered with the template; targets are the
//                    tokens of the assistant turns (their text and the template's end-of-turn
//                    marker), found by rendering each turn's prefix.
//   text             the text with the tokenizer's special tokens (BOS) + EOS; every token.
// loss_on_prompt puts every token after the first in the loss. Torch-free.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/chat_template.h"
#include "data/sft_dataset.h"
#include "trainer/model/tokenizer.h"

namespace anchor::sft {

struct SftExample {
  std::vector<int64_t> prompt_ids;   // context, never a target (at least one token)
  std::vector<int64_t> target_ids;   // the tokens predicted after the prompt
  std::vector<uint8_t> target_loss;  // per target: 1 = in the loss
  int64_t loss_tokens() const;
};

struct SftTokenization {
  bool loss_on_prompt = false;
  std::vector<int64_t> masked_ids;  // never in the loss (control tokens with mask_control_tokens)
  int64_t max_tokens = 0;           // 0 = no limit; longer sequences are an error
};

// `where` (file:line) is named in errors.
SftExample tokenize_sft_record(const data::SftRecord& record, const Tokenizer& tokenizer,
                               const data::ChatTemplate& chat, const SftTokenization& options,
                               const std::string& where);

}  // namespace anchor::sft
