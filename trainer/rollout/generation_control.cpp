#include "trainer/rollout/generation_control.h"

#include "trainer/common/error.h"
#include "trainer/model/pretrained.h"
#include "trainer/rollout/sampler.h"

namespace anchor {

GenerationControl generation_control(const std::string& control, bool indicator, const Tokenizer& tokenizer,
                                     const std::string& control_key, const std::string& indicator_key) {
  Control c = Control::none;
  AR_CHECK(control.empty() || enum_from_name(control, c), control_key, ": '", control,
           "' is not allowed (expected one of: ", enum_names_joined<Control>(), ")");
  return generation_control(c, indicator, tokenizer, control_key, indicator_key);
}

GenerationControl generation_control(Control control, bool indicator, const Tokenizer& tokenizer,
                                     const std::string& control_key, const std::string& indicator_key) {
  GenerationControl g;
  g.control = control;
  if (g.control != Control::none)
    AR_CHECK(tokenizer.token_id(control_token_text(g.control)) >= 0, control_key, ": the model has no ",
             control_token_text(g.control), " token; train it with sft.mode: conditional first");
  g.indicator = indicator;
  if (indicator)
    AR_CHECK(tokenizer.token_id(kIndicatorToken) >= 0, indicator_key, ": the model has no ", kIndicatorToken,
             " token; train it with sft.mode: context_indicator first");
  return g;
}

std::vector<data::ChatMessage> controlled_conversation(std::vector<data::ChatMessage> messages,
                                                       const GenerationControl& control) {
  if (!control.indicator) return messages;
  for (size_t i = messages.size(); i-- > 0;)
    if (messages[i].role == "user") {
      messages[i].content = with_indicator(messages[i].content);
      break;
    }
  return messages;
}

std::string controlled_prompt_text(const std::string& prompt, const GenerationControl& control) {
  return control.indicator ? with_indicator(prompt) : prompt;
}

std::vector<int64_t> controlled_prompt_ids(std::vector<int64_t> ids, const Tokenizer& tokenizer,
                                           const GenerationControl& control) {
  if (control.control != Control::none) ids.push_back(tokenizer.token_id(control_token_text(control.control)));
  return ids;
}

ControlledPrompt controlled_prompt(const Tokenizer& tokenizer, const data::ChatTemplate& chat,
                                   const std::vector<data::ChatMessage>& conversation,
                                   const GenerationControl& control) {
  ControlledPrompt p;
  p.text = chat.render(controlled_conversation(conversation, control), true);
  p.ids = controlled_prompt_ids(encode_prompt(tokenizer, chat, p.text), tokenizer, control);
  return p;
}

void set_control_sampling(const Tokenizer& tokenizer, const GenerationControl& control, SamplingParams& params) {
  const int64_t good = tokenizer.token_id(kGoodToken), bad = tokenizer.token_id(kBadToken);
  if (const int64_t ind = tokenizer.token_id(kIndicatorToken); ind >= 0) params.banned_token_ids.push_back(ind);
  if (control.control == Control::none) {
    for (int64_t id : {good, bad})
      if (id >= 0) params.banned_token_ids.push_back(id);
    return;
  }
  params.steer_token_id = tokenizer.token_id(control_token_text(control.control));
  params.steered_token_ids.clear();
  for (int64_t id : {good, bad})
    if (id >= 0) params.steered_token_ids.push_back(id);
}

}  // namespace anchor
