// `anchor-rl chat`: a multi-turn conversation with a model through its chat template, the
// answer streamed token by token (whole characters only). One user message per input line;
// an empty line or end of input ends the session, so it also works from a pipe.
#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <iostream>
#include <memory>

#include "trainer/cli/commands.h"
#include "trainer/cli/device_options.h"
#include "trainer/common/error.h"
#include "trainer/model/pretrained.h"
#include "trainer/rollout/sampler.h"

namespace anchor::cli {
namespace {

struct ChatOptions {
  std::string model_dir;
  std::string chat_template = "auto";
  std::string system;
  SamplingParams sampling;
  bool show_prompt = false;
  DeviceOptions device;
};

int run_chat(ChatOptions& o) {
  const Pretrained p = load_pretrained(o.model_dir, resolve_device(o.device));
  const data::ChatTemplate chat = chat_template_for(p, o.chat_template, "--template");
  std::cerr << "chat: " << p.model.num_parameters() / 1e6 << "M parameters, " << p.tokenizer.format() << ", template "
            << chat.describe() << "\n(one message per line; an empty line ends)\n";
  std::vector<data::ChatMessage> messages;
  if (!o.system.empty()) messages.push_back({"system", o.system});
  std::string line;
  for (int64_t turn = 0;; ++turn) {
    std::cout << "> " << std::flush;
    if (!std::getline(std::cin, line) || line.empty()) break;
    messages.push_back({"user", line});
    const std::string prompt = chat.render(messages, true);
    if (o.show_prompt) std::cerr << "[prompt] " << prompt << "\n";
    SamplingParams params = o.sampling;
    params.seed = o.sampling.seed + static_cast<uint64_t>(turn);
    StreamingDecoder stream(p.tokenizer);
    params.on_token = [&](int64_t, int64_t id) { std::cout << stream.push(id) << std::flush; };
    const RolloutBatch out = generate(p.model, p.tokenizer, {encode_prompt(p.tokenizer, chat, prompt)}, params);
    std::cout << stream.finish() << "\n";
    messages.push_back({"assistant", out.response_texts[0]});
  }
  return 0;
}

}  // namespace

Action register_chat(CLI::App& app) {
  auto o = std::make_shared<ChatOptions>();
  o->sampling.max_new_tokens = 256;
  o->sampling.temperature = 0.0;
  CLI::App* sub = app.add_subcommand("chat", "Talk to a model through its chat template (streamed answers)");
  sub->add_option("--model", o->model_dir, "Model directory")->required()->check(CLI::ExistingDirectory);
  sub->add_option("--template", o->chat_template, "auto (the model's template) | chatml | llama3 | qwen")
      ->capture_default_str();
  sub->add_option("--system", o->system, "System message");
  sub->add_option("--max-new-tokens", o->sampling.max_new_tokens, "Tokens per answer at most")
      ->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--temperature", o->sampling.temperature, "0 = greedy")->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub->add_option("--top-p", o->sampling.top_p, "Nucleus sampling mass")->check(CLI::Range(1e-9, 1.0))
      ->capture_default_str();
  sub->add_option("--seed", o->sampling.seed, "Sampling seed")->capture_default_str();
  sub->add_flag("--show-prompt", o->show_prompt, "Print each rendered prompt to stderr");
  add_device_options(*sub, o->device);
  return [sub, o]() -> int { return sub->parsed() ? run_chat(*o) : -1; };
}

}  // namespace anchor::cli
