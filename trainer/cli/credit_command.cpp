// `anchor-rl credit`: the credit map of one text under a model — which tokens are preplan
// points and anchors, which sentences are thought anchors — as credit.json and an offline
// HTML page (render it to PNG with scripts/plots/render_credit_png.sh).
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <iostream>
#include <memory>

#include "data/prompt_dataset.h"
#include "trainer/analysis/credit_analysis.h"
#include "trainer/analysis/credit_html.h"
#include "trainer/cli/commands.h"
#include "trainer/cli/device_options.h"
#include "trainer/common/error.h"
#include "trainer/common/file_util.h"
#include "trainer/checkpoint/checkpoint.h"
#include "trainer/config/train_config.h"

namespace anchor::cli {
namespace {

struct CreditCommandOptions {
  std::string model_dir;
  std::string text_file;
  std::string prompt;               // with --text: the prompt before the text (default: BOS only)
  std::string data;
  int64_t index = -1;
  bool generate = false;
  std::string prompt_key = "prompt";
  std::string response_key = "response";
  std::string prompt_template = "plain";
  std::string out_dir;
  std::string config;               // a run config whose credit: section is used
  std::vector<std::string> overrides;
  bool suppression = false;
  int64_t resample = 0;
  std::vector<std::string> rewards = {"countdown"};
  SamplingParams sampling;
  double resample_temperature = 1.0;
  DeviceOptions device;
};

int run_credit(CreditCommandOptions& o) {
  const TrainConfig cfg = o.config.empty() ? parse_train_config("", "--set", o.overrides, ConfigUse::credit)
                                           : load_train_config(o.config, o.overrides, ConfigUse::credit);
  const at::TensorOptions options = resolve_device(o.device);
  const Pretrained policy = load_pretrained(o.model_dir, options);

  const data::ChatTemplate chat = chat_template_for(policy, o.prompt_template, "--template");
  CreditAnalysisInput input;
  std::string title;
  if (!o.text_file.empty()) {
    input.prompt_text = chat.apply(o.prompt);
    input.prompt_ids = encode_prompt(policy.tokenizer, chat, input.prompt_text);
    input.response_ids = policy.tokenizer.encode(read_text_file(o.text_file), false);
    title = o.text_file;
  } else {
    const auto dataset = data::PromptDataset::load_jsonl(o.data, o.prompt_key);
    AR_CHECK(o.index >= 0 && static_cast<size_t>(o.index) < dataset.size(), "--index ", o.index, ": ", o.data,
             " has ", dataset.size(), " rows (0-based)");
    const data::Example& ex = dataset[static_cast<size_t>(o.index)];
    input.example = ex.row;
    dataset.check_renders_with(chat, "--template");
    input.prompt_text = chat.render(ex.conversation(), true);
    input.prompt_ids = encode_prompt(policy.tokenizer, chat, input.prompt_text);
    title = str_cat(o.data, ":", ex.line);
    if (o.generate) {
      SamplingParams sp = o.sampling;
      const RolloutBatch rb = generate(policy.model, policy.tokenizer, {input.prompt_ids}, sp);
      const int64_t len = rb.response_mask[0].sum().item<int64_t>();
      const int64_t* ids = rb.response_ids[0].data_ptr<int64_t>();
      input.response_ids.assign(ids, ids + len);
      title += " (generated)";
    } else {
      AR_CHECK(ex.row.contains(o.response_key) && ex.row[o.response_key].is_string(), o.data, ":", ex.line,
               ": no string field '", o.response_key, "' to analyse (use --generate to sample a response)");
      input.response_ids = policy.tokenizer.encode(ex.row[o.response_key].get<std::string>(), false);
    }
  }

  const rewards::CompositeReward reward = rewards::CompositeReward::from_names(o.rewards);
  CreditAnalysisOptions ao;
  ao.credit = cfg.credit;
  // A checkpoint of a run with credit.layers: auto observes the layers that run chose.
  std::string layer_choice;
  if (ao.credit.layers.mode == credit::LayerMode::automatic && std::filesystem::exists(std::filesystem::path(o.model_dir) / "trainer_state.json")) {
    const TrainerState state = load_trainer_state(o.model_dir);
    if (state.extra.contains("credit_layers")) {
      ao.credit.layers = {credit::LayerMode::list, state.extra["credit_layers"].get<std::vector<int64_t>>()};
      layer_choice = "auto (chosen by the run, from its checkpoint)";
    }
  }
  ao.seed = o.sampling.seed;
  ao.suppression = o.suppression;
  ao.resample = o.resample;
  ao.sampling = o.sampling;
  ao.sampling.temperature = o.resample_temperature;
  ao.reward = o.resample > 0 ? &reward : nullptr;
  nlohmann::json report = analyze_credit(policy, input, ao);
  report["model"] = o.model_dir;
  if (!layer_choice.empty()) report["layer_choice"] = layer_choice;
  report["source"] = title;
  report["options"] = {{"window", cfg.credit.window},
                       {"horizon_low", cfg.credit.horizon_low},
                       {"horizon_high", cfg.credit.horizon_high},
                       {"head_quantile", cfg.credit.head_quantile},
                       {"sinks", enum_name(cfg.credit.sinks)},
                       {"sink_key_share", cfg.credit.sink_key_share},
                       {"sink_query_share", cfg.credit.sink_query_share},
                       {"sink_head_share", cfg.credit.sink_head_share},
                       {"token_fraction", cfg.credit.token_fraction},
                       {"amplification", cfg.credit.amplification},
                       {"coupled_alpha", cfg.credit.coupled_alpha},
                       {"sentence_fraction", cfg.credit.sentence_fraction},
                       {"proximity", cfg.credit.proximity},
                       {"receiver_heads", cfg.credit.receiver_heads}};

  std::filesystem::create_directories(o.out_dir);
  const std::string json_path = (std::filesystem::path(o.out_dir) / "credit.json").string();
  const std::string html_path = (std::filesystem::path(o.out_dir) / "credit.html").string();
  write_text_file_atomic(json_path, report.dump(1) + "\n");
  write_text_file_atomic(html_path, credit_html(report, title));
  int64_t anchors = 0, preplan = 0, top_sentences = 0;
  for (const auto& t : report["tokens"]) {
    anchors += t["anchor"].get<bool>();
    preplan += t["preplan"].get<bool>();
  }
  for (const auto& s : report["sentences"]) top_sentences += s["thought_anchor"].get<bool>();
  std::cout << "credit: " << report["tokens"].size() << " response tokens (" << preplan << " preplan, " << anchors
            << " anchors), " << report["sentences"].size() << " sentences (" << top_sentences
            << " thought anchors)\n  " << json_path << "\n  " << html_path << "\n";
  return 0;
}

}  // namespace

Action register_credit(CLI::App& app) {
  auto o = std::make_shared<CreditCommandOptions>();
  CLI::App* sub = app.add_subcommand("credit", "Credit map of one text: preplan / anchor tokens, thought-anchor "
                                               "sentences, γ per strategy -> credit.json + credit.html");
  sub->add_option("--model", o->model_dir, "Model directory")->required()->check(CLI::ExistingDirectory);
  auto* text = sub->add_option("--text", o->text_file, "A text file analysed as the response")->check(CLI::ExistingFile);
  sub->add_option("--prompt", o->prompt, "With --text: prompt text before it (default: BOS only)")->needs(text);
  auto* data = sub->add_option("--data", o->data, "JSONL dataset")->check(CLI::ExistingFile)->excludes(text);
  sub->add_option("--index", o->index, "0-based row of --data")->needs(data);
  sub->add_flag("--generate", o->generate, "Sample the response from the model instead of reading --response-key")
      ->needs(data);
  sub->add_option("--prompt-key", o->prompt_key, "Field holding the prompt")->capture_default_str();
  sub->add_option("--response-key", o->response_key, "Field holding the response to analyse")->capture_default_str();
  sub->add_option("--template", o->prompt_template, "auto (the model's chat template) | plain | chatml | llama3 | qwen | a string with {prompt}")
      ->capture_default_str();
  sub->add_option("--out", o->out_dir, "Output directory (credit.json, credit.html)")->required();
  sub->add_option("--config", o->config, "A run config whose credit: section is used")->check(CLI::ExistingFile);
  sub->add_option("--set", o->overrides, "credit.key=value override (repeatable)");
  sub->add_flag("--suppression", o->suppression, "Attention suppression per sentence (one forward per sentence)");
  sub->add_option("--resample", o->resample, "Resampling importance: K completions per sentence prefix, with and "
                                              "without the sentence")->check(CLI::NonNegativeNumber);
  sub->add_option("--reward", o->rewards, "Reward judging resampled answers: countdown | math_answer")
      ->capture_default_str();
  sub->add_option("--max-new-tokens", o->sampling.max_new_tokens, "Generation budget (--generate, --resample)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--temperature", o->sampling.temperature, "--generate temperature, 0 = greedy")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  sub->add_option("--resample-temperature", o->resample_temperature, "--resample temperature")
      ->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--stop", o->sampling.stop_strings, "Stop string (repeatable)");
  sub->add_option("--seed", o->sampling.seed, "Seed (sampling, random baseline)")->capture_default_str();
  add_device_options(*sub, o->device);
  return [sub, o]() -> int {
    if (!sub->parsed()) return -1;
    AR_CHECK(!o->text_file.empty() || (!o->data.empty() && o->index >= 0),
             "credit: give --text FILE, or --data FILE with --index I");
    return run_credit(*o);
  };
}

}  // namespace anchor::cli
