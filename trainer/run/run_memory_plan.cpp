#include "trainer/run/run_memory_plan.h"

#include <algorithm>
#include <filesystem>

#include "data/chat_template.h"
#include "data/prompt_dataset.h"
#include "data/sft_dataset.h"
#include "trainer/common/device.h"
#include "trainer/common/error.h"
#include "trainer/model/lora_config.h"
#include "trainer/model/pretrained.h"
#include "trainer/model/tokenizer.h"

namespace anchor {
namespace {

namespace fs = std::filesystem;

// The most tokens among `texts`, encoding only those that could beat the best so far: a text
// of b bytes has at most b + 1 tokens, so longest first and stop when none can.
int64_t most_tokens(std::vector<std::string> texts, const Tokenizer& tokenizer, const data::ChatTemplate& chat) {
  std::sort(texts.begin(), texts.end(), [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  int64_t best = 0;
  for (const std::string& t : texts) {
    if (static_cast<int64_t>(t.size()) + 1 <= best) break;
    best = std::max<int64_t>(best, static_cast<int64_t>(encode_prompt(tokenizer, chat, t).size()));
  }
  return best;
}

int64_t measured_prompt_tokens(const TrainConfig& cfg, ConfigUse use, const std::string& dir, const LlamaConfig& model) {
  const Tokenizer tokenizer = Tokenizer::load(dir);
  const data::ChatTemplate chat = chat_template_for(tokenizer, dir, cfg.data.template_, "data.template");
  std::vector<std::string> texts;
  if (use == ConfigUse::sft) {
    const data::SftDataset records =
        data::SftDataset::load_jsonl(cfg.data.train, {cfg.data.prompt_key, cfg.sft.response_key, cfg.sft.text_key});
    // As trainer/sft/sft_examples.cpp lays them out: a rendered prompt and its response, a
    // text, or a rendered conversation (+ BOS / EOS, and a token where two pieces meet).
    for (size_t i = 0; i < records.size(); ++i) {
      const data::SftRecord& r = records[i];
      if (r.kind == data::SftRecord::Kind::prompt_response)
        texts.push_back(chat.render({r.messages.at(0)}, true) + r.messages.at(1).content);
      else if (r.kind == data::SftRecord::Kind::text || !chat.renders_conversations()) {
        std::string joined;  // a plain template cannot render a conversation: its contents
        for (const data::ChatMessage& m : r.messages) joined += m.content;
        texts.push_back(joined);
      } else
        texts.push_back(chat.render(r.messages, false));
    }
    int64_t tokens = most_tokens(texts, tokenizer, chat) + 3;
    // The modes add tokens: a control token before each sentence (at most one per 4 tokens
    // counted generously), [IND] on user turns.
    if (cfg.sft.mode == SftMode::conditional) tokens += tokens / 4;
    if (cfg.sft.mode == SftMode::context_indicator) tokens += 16;
    return tokens;
  }
  for (const std::string& path : {cfg.data.train, cfg.data.eval}) {
    if (path.empty()) continue;
    const data::PromptDataset prompts = data::PromptDataset::load_jsonl(path, cfg.data.prompt_key);
    for (size_t i = 0; i < prompts.size(); ++i) texts.push_back(chat.render(prompts[i].conversation(), true));
  }
  int64_t tokens = most_tokens(texts, tokenizer, chat);
  if (cfg.rollout.control != Control::none) tokens += 1;  // <|good|> / <|bad|> opens the response
  if (cfg.rollout.indicator) tokens += 8;                 // " [IND]" on the user turn
  // A longer prompt than data.max_prompt_tokens or the model's positions minus max_new_tokens is
  // an error naming its row, or dropped, when the data loads (trainer/rl/prompt_limits.h): the
  // plan is for the prompts that will run.
  tokens = std::min(tokens, std::max<int64_t>(1, model.max_position_embeddings - cfg.rollout.max_new_tokens));
  return cfg.data.max_prompt_tokens > 0 ? std::min(tokens, cfg.data.max_prompt_tokens) : tokens;
}

}  // namespace

MemoryPlanInputs run_memory_plan_inputs(const TrainConfig& cfg, ConfigUse use, const std::string& dir,
                                        const PlanRequest& request) {
  MemoryPlanInputs in;
  // An adapter directory (LoRA checkpoint): the shape is its base model's.
  const fs::path config_json = fs::path(is_adapter_directory(dir) ? adapter_base_directory(dir) : dir) / "config.json";
  AR_CHECK(fs::exists(config_json), dir, ": no config.json (the memory plan reads the model's shape from it)");
  in.model = read_llama_config(config_json.string());
  in.config = cfg;
  in.use = use;
  in.world_size = std::max<int64_t>(1, request.world_size);
  in.cuda = cfg.model.device.rfind("cuda", 0) == 0;
  in.runtime_bytes = request.runtime_bytes;
  if (request.prompt_tokens > 0) {
    in.prompt_tokens = request.prompt_tokens;
  } else if (has_tokenizer_files(dir) && fs::exists(cfg.data.train)) {
    in.prompt_tokens = measured_prompt_tokens(cfg, use, dir, in.model);
  } else {
    AR_CHECK(cfg.data.max_prompt_tokens > 0, "memory plan: the longest prompt is unknown (", dir,
             " has no tokenizer or ", cfg.data.train.empty() ? std::string("data.train is empty") : cfg.data.train + " is missing",
             "): set data.max_prompt_tokens or pass --prompt-tokens");
    in.prompt_tokens = cfg.data.max_prompt_tokens;
  }
  if (!request.device_memory.empty()) {
    in.device_bytes = parse_byte_size(request.device_memory, "--device-memory");
    in.device_name = "(--device-memory)";
  } else {
    const DeviceMemory d = device_memory(cfg.model.device, request.ranks_per_node);
    in.device_bytes = d.bytes;
    in.device_name = d.description;
  }
  return in;
}

}  // namespace anchor
