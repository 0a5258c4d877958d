// `anchor-rl eval`: accuracy and pass@k of a model on a JSONL dataset.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <iostream>
#include <memory>

#include "data/prompt_dataset.h"
#include "rewards/reward_function.h"
#include "trainer/cli/commands.h"
#include "trainer/cli/device_options.h"
#include "trainer/common/error.h"
#include "trainer/model/pretrained.h"
#include "trainer/rollout/evaluation.h"
#include "trainer/rl/prompt_limits.h"
#include "trainer/rollout/generation_control.h"

namespace anchor::cli {
namespace {

struct EvalCommandOptions {
  std::string model_dir;
  std::string data;
  std::string prompt_key = "prompt";
  std::string prompt_template = "plain";
  std::vector<std::string> rewards = {"countdown"};
  EvalOptions eval;
  std::string control = "none";
  bool indicator = false;
  DeviceOptions device;
};

int run_eval(const EvalCommandOptions& o) {
  const at::TensorOptions options = resolve_device(o.device);
  Pretrained p = load_pretrained(o.model_dir, options);
  const auto raw = data::PromptDataset::load_jsonl(o.data, o.prompt_key);
  const rewards::CompositeReward reward = rewards::CompositeReward::from_names(o.rewards);
  const data::ChatTemplate chat = chat_template_for(p, o.prompt_template, "--template");
  raw.check_renders_with(chat, "--template");
  raw.check_rows([&](const nlohmann::json& row) { return reward.row_problem(row); });
  const auto dataset =
      fit_prompts(raw, p.tokenizer, chat, prompt_limit(p.model.config(), o.eval.max_new_tokens, 0), false, "");
  EvalOptions eval = o.eval;
  eval.control = generation_control(o.control, o.indicator, p.tokenizer, "--control", "--indicator");
  const EvalResult r = evaluate(p.model, p.tokenizer, dataset, chat, reward, eval);
  std::cout << nlohmann::json{{"model", o.model_dir}, {"data", o.data}, {"prompts", r.prompts},
                              {"samples", r.samples}, {"accuracy", r.accuracy},
                              {"accuracy_stderr", r.accuracy_stderr},
                              {"pass_at_" + std::to_string(o.eval.samples_per_prompt), r.pass_at_k},
                              {"mean_reward", r.mean_reward}, {"mean_response_tokens", r.mean_response_tokens}}
                   .dump(2)
            << "\n";
  return 0;
}

}  // namespace

Action register_eval(CLI::App& app) {
  auto o = std::make_shared<EvalCommandOptions>();
  CLI::App* sub = app.add_subcommand("eval", "Accuracy and pass@k of a model on a JSONL dataset");
  sub->add_option("--model", o->model_dir, "Model directory")->required()->check(CLI::ExistingDirectory);
  sub->add_option("--data", o->data, "JSONL dataset (prompt + answer / task fields)")->required()->check(CLI::ExistingFile);
  sub->add_option("--prompt-key", o->prompt_key, "Field holding the prompt")->capture_default_str();
  sub->add_option("--template", o->prompt_template, "auto (the model's chat template) | plain | chatml | llama3 | qwen | a string with {prompt}")
      ->capture_default_str();
  sub->add_option("--reward", o->rewards, "Correctness reward(s): countdown | math_answer | arithmetic_claims")->capture_default_str();
  sub->add_option("--samples", o->eval.samples_per_prompt, "Samples per prompt (k of pass@k)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--temperature", o->eval.temperature, "0 = greedy")->check(CLI::NonNegativeNumber)->capture_default_str();
  sub->add_option("--top-p", o->eval.top_p, "Nucleus mass")->check(CLI::Range(1e-9, 1.0))->capture_default_str();
  sub->add_option("--max-new-tokens", o->eval.max_new_tokens, "Generation budget")->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--stop", o->eval.stop, "Stop string (repeatable)");
  sub->add_option("--limit", o->eval.limit, "Evaluate the first N prompts (0 = all)")->capture_default_str();
  sub->add_option("--seed", o->eval.seed, "Sampling seed")->capture_default_str();
  sub->add_option("--control", o->control,
                  "none | good | bad: end each prompt with <|good|> / <|bad|> (a model trained with sft.mode conditional)")
      ->check(CLI::IsMember({"none", "good", "bad"}))->capture_default_str();
  sub->add_flag("--indicator", o->indicator,
                "Append ' [IND]' to each user message (a model trained with sft.mode context_indicator)");
  add_device_options(*sub, o->device);
  return [sub, o]() -> int { return sub->parsed() ? run_eval(*o) : -1; };
}

}  // namespace anchor::cli
