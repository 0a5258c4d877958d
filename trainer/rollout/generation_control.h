// Generation conditioned the way an SFT mode taught (docs/design.md §6): `--control good|bad` (and
// rollout.control) ends the prompt with <|good|> / <|bad|>, so the response is generated as a
// run of good (bad) sentences; `--indicator` (rollout.indicator) appends " [IND]" to the user
// message. Control tokens a model knows are never sampled, whether or not a control is asked.
// Used by generate, eval, the RL rollouts and evaluation.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/chat_template.h"
#include "trainer/model/tokenizer.h"
#include "trainer/rollout/control_tokens.h"

namespace anchor {

struct SamplingParams;

struct GenerationControl {
  Control control = Control::none;
  bool indicator = false;
};

// control: none | good | bad; key names the option / config key in errors. The tokenizer must
// know the tokens asked for (a model trained with that sft.mode).
GenerationControl generation_control(const std::string& control, bool indicator, const Tokenizer& tokenizer,
                                     const std::string& control_key, const std::string& indicator_key);
GenerationControl generation_control(Control control, bool indicator, const Tokenizer& tokenizer,
                                     const std::string& control_key, const std::string& indicator_key);

// The conversation with " [IND]" appended to its last user turn (when asked).
std::vector<data::ChatMessage> controlled_conversation(std::vector<data::ChatMessage> messages,
                                                       const GenerationControl& control);
// A plain prompt with " [IND]" appended (when asked).
std::string controlled_prompt_text(const std::string& prompt, const GenerationControl& control);
// Prompt ids followed by the control token (when asked).
std::vector<int64_t> controlled_prompt_ids(std::vector<int64_t> ids, const Tokenizer& tokenizer,
                                           const GenerationControl& control);
// A conversation rendered with the template (" [IND]" on its last user turn when asked) and its
// ids (the tokenizer's special tokens as encode_prompt adds them, then the control token):
// the prompt of RL rollouts and evaluation.
struct ControlledPrompt {
  std::string text;
  std::vector<int64_t> ids;
};
ControlledPrompt controlled_prompt(const Tokenizer& tokenizer, const data::ChatTemplate& chat,
                                   const std::vector<data::ChatMessage>& conversation,
                                   const GenerationControl& control);

// How the sampler treats control tokens, set in `params` (banned ids are appended): without a
// control, no control token the model knows (<|good|>, <|bad|>, [IND]) is ever sampled. With
// one, [IND] is never sampled and wherever the model would begin a sentence with <|good|> or
// <|bad|> it gets the asked token (their probabilities are merged onto it), so every sentence
// stays conditioned as in training, where each one began with its token; decoded text never
// shows them.
void set_control_sampling(const Tokenizer& tokenizer, const GenerationControl& control, SamplingParams& params);

}  // namespace anchor
