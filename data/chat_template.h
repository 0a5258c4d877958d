// Chat templates: how a conversation (system / user / assistant turns) or a bare prompt becomes
// the text a model continues. anchor-rl does not run Jinja; it renders the families released
// instruct models use and recognises them in a model's own template:
//   chatml  <|im_start|>role\n...<|im_end|>\n — SmolLM2, Qwen2 / Qwen2.5 (each with the default
//           system prompt its template inserts when the conversation has none), Qwen3 (none;
//           <think> blocks of earlier assistant turns are dropped as its template does)
//   llama3  <|begin_of_text|><|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|> — with
//           Llama 3.1's "Cutting Knowledge Date" system header when the template has one
//   plain   a format string with {prompt} (no chat markup; the demo's "plain" is "{prompt}")
// `data.template: auto` reads the model's template (tokenizer_config.json "chat_template" or
// chat_template.jinja) and picks the family by its markers; a template of another family is an
// error that says so. Torch-free.
#pragma once

#include <string>
#include <vector>

namespace anchor::data {

struct ChatMessage {
  std::string role;  // system | user | assistant
  std::string content;
};

class ChatTemplate {
 public:
  enum class Family { plain, chatml, llama3 };

  // spec: auto | plain | chatml | llama3 | qwen | any string containing {prompt}. key names the
  // config key / option in errors. For auto: model_template is the model's Jinja template ("" =
  // none), template_source the file it came from, model_dir the directory (errors).
  // bos_text is the tokenizer's BOS token text (llama3 writes it).
  ChatTemplate(const std::string& spec, const std::string& key, const std::string& model_template = "",
               const std::string& template_source = "", const std::string& bos_text = "");

  // The text up to where the assistant's answer starts (add_generation_prompt) or the whole
  // conversation. A plain format renders exactly one user turn.
  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;
  // One user turn, with the generation prompt.
  std::string apply(const std::string& prompt) const { return render({{"user", prompt}}, true); }

  // Whether the tokenizer should add its own special tokens (BOS) to the rendered text: true for
  // plain formats and the named presets (as before chat templates existed), false for a model's
  // own template, which writes them itself (as transformers' apply_chat_template).
  bool encode_with_special_tokens() const { return add_special_; }
  bool renders_conversations() const { return family_ != Family::plain; }
  Family family() const { return family_; }
  // One line for the log: family, default system prompt, where it came from.
  std::string describe() const;

 private:
  Family family_ = Family::plain;
  std::string format_;          // plain: contains {prompt}
  std::string default_system_;  // chatml: inserted when the first turn is not a system turn
  bool strip_think_ = false;    // chatml (Qwen3): drop <think>...</think> of assistant history
  std::string llama3_date_;     // llama3: "Today Date" of the 3.1 system header ("" = 3.0 style)
  std::string bos_text_;
  bool add_special_ = true;
  std::string origin_;
};

// Roles a conversation may use; anything else is an error naming `where`.
void check_chat_roles(const std::vector<ChatMessage>& messages, const std::string& where);

}  // namespace anchor::data
