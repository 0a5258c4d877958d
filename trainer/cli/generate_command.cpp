// `anchor-rl generate`: sample completions from any Hugging Face Llama-format checkpoint.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>

#include "trainer/cli/commands.h"
#include "trainer/cli/device_options.h"
#include "trainer/common/device.h"
#include "trainer/common/error.h"
#include "trainer/model/pretrained.h"
#include "trainer/rollout/sampler.h"
#include "trainer/rollout/generation_control.h"

namespace anchor::cli {
namespace {

struct GenerateOptions {
  std::string model_dir;
  std::vector<std::string> prompts;
  std::string prompt_file;
  int64_t num_samples = 1;
  SamplingParams sampling;
  bool greedy = false;
  bool no_bos = false;
  std::vector<std::string> banned_tokens;
  std::string output = "text";
  int64_t batch_size = 0;
  DeviceOptions device;
  bool bench = false;
  bool ignore_eos = false;
  bool chat = false;
  std::string chat_template = "auto";
  std::string system;
  std::string control = "none";
  bool indicator = false;
  std::string profile;  // LibTorch profiler trace of the generate calls (chrome trace JSON)
};

std::vector<std::string> read_prompt_file(const std::string& path) {
  std::ifstream in(path);
  AR_CHECK(in.good(), path, ": cannot open prompt file");
  std::vector<std::string> prompts;
  std::string line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    // Lines are JSON strings when they start with a quote (to allow newlines), else raw text.
    if (line.front() == '"') {
      try {
        prompts.push_back(nlohmann::json::parse(line).get<std::string>());
      } catch (const std::exception& e) {
        AR_FAIL(path, ":", line_no, ": expected a JSON string or plain text (", e.what(), ")");
      }
    } else {
      prompts.push_back(line);
    }
  }
  AR_CHECK(!prompts.empty(), path, ": no prompts (one per line)");
  return prompts;
}

int run_generate(GenerateOptions& o) {
  const at::TensorOptions options = resolve_device(o.device);
  const auto t_load = std::chrono::steady_clock::now();
  Pretrained p = load_pretrained(o.model_dir, options);
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count();

  std::vector<std::string> texts = o.prompts;
  if (!o.prompt_file.empty())
    for (auto& t : read_prompt_file(o.prompt_file)) texts.push_back(t);
  AR_CHECK(!texts.empty(), "generate: give --prompt TEXT (repeatable) or --prompt-file FILE");
  if (o.greedy) o.sampling.temperature = 0.0;
  if (o.ignore_eos) o.sampling.stop_token_ids = {-1};  // no id matches: run to max_new_tokens
  for (const std::string& token : o.banned_tokens) {
    const int64_t id = p.tokenizer.token_id(token);
    AR_CHECK(id >= 0, "--ban: '", token, "' is not a token of ", o.model_dir);
    o.sampling.banned_token_ids.push_back(id);
  }

  // Models trained by an SFT mode: control tokens are never sampled without --control, and
  // steered to the asked one with it (sft/generation_control.h); --indicator adds [IND].
  const GenerationControl control =
      generation_control(o.control, o.indicator, p.tokenizer, "--control", "--indicator");
  set_control_sampling(p.tokenizer, control, o.sampling);
  // --chat: each prompt is a user turn of the model's chat template (or --template).
  std::optional<data::ChatTemplate> chat;
  if (o.chat) {
    chat.emplace(chat_template_for(p, o.chat_template, "--template"));
    for (std::string& t : texts) {
      std::vector<data::ChatMessage> messages;
      if (!o.system.empty()) messages.push_back({"system", o.system});
      messages.push_back({"user", t});
      t = chat->render(controlled_conversation(messages, control), true);
    }
  } else {
    AR_CHECK(o.system.empty(), "--system needs --chat");
    for (std::string& t : texts) t = controlled_prompt_text(t, control);
  }
  std::vector<std::vector<int64_t>> prompt_ids;
  std::vector<size_t> prompt_of;
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto ids = controlled_prompt_ids(
        chat ? encode_prompt(p.tokenizer, *chat, texts[i]) : p.tokenizer.encode(texts[i], !o.no_bos), p.tokenizer,
        control);
    AR_CHECK(!ids.empty(), "generate: prompt ", i, " has no tokens (this tokenizer adds no BOS; give some text)");
    for (int64_t s = 0; s < o.num_samples; ++s) {
      prompt_ids.push_back(ids);
      prompt_of.push_back(i);
    }
  }
  const size_t batch = o.batch_size > 0 ? static_cast<size_t>(o.batch_size) : prompt_ids.size();

  int64_t generated = 0;
  double generate_s = 0;
  nlohmann::json results = nlohmann::json::array();
  for (size_t start = 0; start < prompt_ids.size(); start += batch) {
    const size_t end = std::min(prompt_ids.size(), start + batch);
    std::vector<std::vector<int64_t>> chunk(prompt_ids.begin() + static_cast<long>(start),
                                            prompt_ids.begin() + static_cast<long>(end));
    SamplingParams params = o.sampling;
    params.seed = o.sampling.seed + start;  // distinct, reproducible streams per batch
    const auto t0 = std::chrono::steady_clock::now();
    std::optional<torch::autograd::profiler::RecordProfile> profiling;
    if (!o.profile.empty()) profiling.emplace(o.profile);
    RolloutBatch out = generate(p.model, p.tokenizer, chunk, params);
    profiling.reset();
    generate_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    generated += out.generated_tokens;
    for (size_t i = 0; i < chunk.size(); ++i) {
      const size_t prompt_index = prompt_of[start + i];
      const int64_t n = out.response_mask[static_cast<int64_t>(i)].sum().item<int64_t>();
      auto ids_tensor = out.response_ids[static_cast<int64_t>(i)].slice(0, 0, n).contiguous();
      std::vector<int64_t> ids(ids_tensor.data_ptr<int64_t>(), ids_tensor.data_ptr<int64_t>() + n);
      results.push_back({{"prompt_index", prompt_index},
                         {"prompt", texts[prompt_index]},
                         {"completion", out.response_texts[i]},
                         {"finish_reason", finish_reason_name(out.finish_reasons[i])},
                         {"token_ids", ids}});
    }
  }

  if (o.bench) {
    // Machine-readable timing for scripts/bench_generate.py.
    std::cout << nlohmann::json{{"generated_tokens", generated}, {"generate_seconds", generate_s},
                                {"tokens_per_second", generated / std::max(generate_s, 1e-9)},
                                {"load_seconds", load_s}, {"threads", at::get_num_threads()},
                                {"sequences", prompt_ids.size()}, {"peak_rss_mb", peak_host_memory_mb()}}
                     .dump()
              << "\n";
    return 0;
  }
  if (o.output == "jsonl") {
    for (const auto& r : results) std::cout << r.dump() << "\n";
  } else {
    for (const auto& r : results) {
      std::cout << "=== prompt " << r["prompt_index"].get<size_t>() << " (" << r["finish_reason"].get<std::string>()
                << ") ===\n"
                << r["prompt"].get<std::string>() << r["completion"].get<std::string>() << "\n";
    }
    std::cerr << "generated " << generated << " tokens in " << generate_s << " s ("
              << generated / std::max(generate_s, 1e-9) << " tokens/s, " << at::get_num_threads() << " threads)\n";
  }
  return 0;
}

}  // namespace

Action register_generate(CLI::App& app) {
  auto o = std::make_shared<GenerateOptions>();
  CLI::App* sub = app.add_subcommand("generate", "Sample completions from a Hugging Face Llama / Qwen model");
  sub->add_option("--model", o->model_dir,
                  "Model directory (config.json, *.safetensors, tokenizer.json or tokenizer.model)")
      ->required()
      ->check(CLI::ExistingDirectory);
  sub->add_option("--prompt", o->prompts, "Prompt text (repeatable)");
  sub->add_option("--prompt-file", o->prompt_file, "File with one prompt per line (plain text or a JSON string)")
      ->check(CLI::ExistingFile);
  sub->add_option("--num-samples", o->num_samples, "Completions per prompt")->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--max-new-tokens", o->sampling.max_new_tokens, "Tokens to generate at most")
      ->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--temperature", o->sampling.temperature, "Sampling temperature (0 = greedy)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  sub->add_option("--top-p", o->sampling.top_p, "Nucleus sampling mass, in (0, 1]")
      ->check(CLI::Range(1e-9, 1.0))->capture_default_str();
  sub->add_option("--top-k", o->sampling.top_k, "Keep the k most likely tokens (0 = off)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  sub->add_flag("--greedy", o->greedy, "Greedy decoding (same as --temperature 0)");
  sub->add_option("--seed", o->sampling.seed, "Sampling seed")->capture_default_str();
  sub->add_option("--stop", o->sampling.stop_strings, "Stop string (repeatable)");
  sub->add_option("--ban", o->banned_tokens, "Token that may never be sampled, e.g. '<|bad|>' (repeatable)");
  sub->add_option("--control", o->control,
                  "none | good | bad: start the response after <|good|> / <|bad|> (a model trained with sft.mode "
                  "conditional; control tokens are never sampled)")
      ->check(CLI::IsMember({"none", "good", "bad"}))->capture_default_str();
  sub->add_flag("--indicator", o->indicator,
                "Append ' [IND]' to each prompt / user message (a model trained with sft.mode context_indicator)");
  sub->add_flag("--no-bos", o->no_bos, "Do not add the tokenizer's special tokens (BOS) to prompts");
  sub->add_flag("--chat", o->chat, "Render each prompt as a user turn of the model's chat template");
  sub->add_option("--template", o->chat_template,
                  "With --chat: auto (the model's template) | chatml | llama3 | qwen | a string with {prompt}")
      ->capture_default_str();
  sub->add_option("--system", o->system, "With --chat: a system message before each prompt");
  sub->add_option("--batch-size", o->batch_size, "Sequences per batch (0 = all at once)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  sub->add_option("--output", o->output, "Output format")->check(CLI::IsMember({"text", "jsonl"}))
      ->capture_default_str();
  sub->add_flag("--bench", o->bench, "Print only a JSON line with timing (tokens/s)");
  sub->add_flag("--ignore-eos", o->ignore_eos, "Do not stop at EOS (benchmarks: fixed length)");
  sub->add_option_function<std::string>(
         "--lora-decode", [o](const std::string& v) { o->sampling.merge_adapters = v == "merged"; },
         "LoRA adapters on the CPU decode path: merged into the packed weights (default) or applied beside them")
      ->check(CLI::IsMember({"merged", "applied"}));
  sub->add_flag("--no-shared-prefill", [o](int64_t) { o->sampling.share_prefill = false; },
                "Prefill every row even when prompts repeat (benchmarks: what sharing saves)");
  sub->add_option("--profile", o->profile,
                  "Write a LibTorch profiler trace of generation here (per-op times with the decode scopes; "
                  "scripts/bench/summarize_trace.py reads it; the last batch only when there are several)");
  add_device_options(*sub, o->device);
  return [sub, o]() -> int { return sub->parsed() ? run_generate(*o) : -1; };
}

}  // namespace anchor::cli
