#include "trainer/sft/sft_data.h"

#include <torch/torch.h>

#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>

#include "rewards/reward_function.h"
#include "trainer/common/device.h"
#include "trainer/common/error.h"
#include "trainer/common/file_util.h"
#include "trainer/common/log.h"
#include "trainer/sft/context_dependency.h"
#include "trainer/sft/control_text.h"
#include "trainer/sft/vocabulary_extension.h"

namespace anchor::sft {
namespace {

using nlohmann::json;

std::string trimmed(const std::string& s, size_t b, size_t e) {
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

// The user message an assistant turn answers ("" when none precedes it).
const std::string& preceding_user(const std::vector<data::ChatMessage>& messages, size_t i) {
  static const std::string none;
  for (size_t j = i; j-- > 0;)
    if (messages[j].role == "user") return messages[j].content;
  return none;
}

void apply_conditional(const TrainConfig& cfg, PreparedSft& p) {
  const ConditionalSection& c = cfg.sft.conditional;
  std::unique_ptr<rewards::RewardComponent> scorer;
  if (c.scorer != "field") scorer = rewards::reward_components().get(c.scorer)(json::object(), "sft.conditional.scorer");
  // 1. Sentences and scores of every assistant turn, in record order.
  std::vector<std::vector<std::vector<LabeledSentence>>> sentences(p.records.size());  // [record][message][k]
  std::vector<double> all_scores;
  for (size_t r = 0; r < p.records.size(); ++r) {
    const data::SftRecord& rec = p.records[r];
    if (scorer)
      if (const std::string problem = scorer->row_problem(rec.row); !problem.empty())
        AR_FAIL(p.records.where(r), ": sft.conditional.scorer ", c.scorer, ": ", problem);
    sentences[r].resize(rec.messages.size());
    std::vector<double> field_scores;
    bool field_per_sentence = false;
    if (!scorer) {
      AR_CHECK(rec.row.contains(c.score_key), p.records.where(r), ": missing field '", c.score_key,
               "' (sft.conditional.score_key: a number, or a list with one number per sentence)");
      const json& f = rec.row.at(c.score_key);
      if (f.is_number()) {
        field_scores.push_back(f.get<double>());
      } else {
        AR_CHECK(f.is_array(), p.records.where(r), ": field '", c.score_key,
                 "' must be a number or a list of numbers, got ", f.type_name());
        for (size_t k = 0; k < f.size(); ++k) {
          AR_CHECK(f[k].is_number(), p.records.where(r), ": ", c.score_key, "[", k, "] must be a number");
          field_scores.push_back(f[k].get<double>());
        }
        field_per_sentence = true;
      }
    }
    size_t k = 0;
    for (size_t m = 0; m < rec.messages.size(); ++m) {
      if (rec.messages[m].role != "assistant") continue;
      const std::string& text = rec.messages[m].content;
      for (const auto& [b, e] : target_sentences(text, c.min_sentence_chars)) {
        LabeledSentence s;
        s.begin = b;
        s.end = e;
        if (scorer) {
          const std::string sentence = trimmed(text, b, e);
          s.score = scorer->score(rewards::RewardInput{preceding_user(rec.messages, m), sentence, rec.row});
        } else if (field_per_sentence) {
          s.score = k < field_scores.size() ? field_scores[k] : 0.0;  // a count mismatch is an error below
        } else {
          s.score = field_scores[0];
        }
        AR_CHECK(std::isfinite(s.score), p.records.where(r), ": sentence ", k, " scored ", s.score,
                 " (not a finite number)");
        all_scores.push_back(s.score);
        sentences[r][m].push_back(s);
        ++k;
      }
    }
    AR_CHECK(!field_per_sentence || k == field_scores.size(), p.records.where(r), ": field '", c.score_key, "' has ",
             field_scores.size(), " scores but the target text has ", k,
             " sentences (segmented as in credit/sentence_segmentation.h, min_sentence_chars ", c.min_sentence_chars,
             ")");
  }
  // 2. Threshold, labels, and the text with control tokens.
  const double threshold =
      c.threshold_percentile >= 0 ? score_percentile(all_scores, c.threshold_percentile) : c.threshold;
  int64_t good = 0, bad = 0, none = 0;
  for (size_t r = 0; r < p.records.size(); ++r) {
    data::SftRecord& rec = p.records[r];
    json listed = json::array();
    int64_t k = 0;
    for (size_t m = 0; m < rec.messages.size(); ++m) {
      std::vector<LabeledSentence>& ss = sentences[r][m];
      if (ss.empty()) continue;
      const std::string original = rec.messages[m].content;
      for (LabeledSentence& s : ss) {
        s.control = leaves_unconditioned(cfg.train.seed, static_cast<int64_t>(r), k, c.unconditioned_fraction)
                        ? Control::none
                        : control_for_score(s.score, threshold);
        (s.control == Control::good ? good : s.control == Control::bad ? bad : none) += 1;
        listed.push_back({{"text", original.substr(s.begin, s.end - s.begin)}, {"score", s.score},
                          {"control", control_name(s.control)}});
        ++k;
      }
      rec.messages[m].content = with_control_tokens(original, ss);
    }
    p.annotations[r]["sentences"] = std::move(listed);
  }
  const int64_t total = good + bad + none;
  p.summary["conditional"] = {{"scorer", c.scorer}, {"threshold", threshold},
                              {"threshold_percentile", c.threshold_percentile}, {"sentences", total},
                              {"good", good}, {"bad", bad}, {"unconditioned", none},
                              {"bad_share", total > 0 ? static_cast<double>(bad) / static_cast<double>(total) : 0.0}};
}

void apply_context_indicator(const TrainConfig& cfg, PreparedSft& p, const Pretrained& policy,
                             const data::ChatTemplate& chat) {
  const ContextIndicatorSection& c = cfg.sft.context_indicator;
  // The seed model: the policy as loaded (before anything is added) when it is the seed
  // directory, else that directory read with its own tokenizer and chat template.
  // The default seed is model.path even when the policy was loaded from a checkpoint (resume,
  // --init-from), so that a resumed run prepares the same data.
  const std::string seed_dir = c.seed_model.empty() ? cfg.model.path : c.seed_model;
  std::unique_ptr<Pretrained> other;
  std::error_code ec;
  if (policy.dir.empty() || !std::filesystem::equivalent(seed_dir, policy.dir, ec)) {
    const at::TensorOptions options = resolve_device(cfg.model.device, cfg.model.dtype, cfg.model.threads, "model");
    other = std::make_unique<Pretrained>(load_pretrained(seed_dir, options));
  }
  const Pretrained& seed = other ? *other : policy;
  const data::ChatTemplate seed_chat = other ? chat_template_for(seed, cfg.data.template_, "data.template") : chat;
  struct Turn {
    size_t record, user_message;
  };
  std::vector<Turn> turns;
  std::vector<ScoredTurn> tokens;
  for (size_t r = 0; r < p.records.size(); ++r) {
    const auto& messages = p.records[r].messages;
    for (size_t m = 1; m < messages.size(); ++m) {
      if (messages[m].role != "assistant" || messages[m - 1].role != "user") continue;
      turns.push_back({r, m - 1});
      tokens.push_back(scored_turn_tokens(seed.tokenizer, seed_chat, messages[m - 1].content, messages[m].content));
    }
  }
  const int64_t layer = c.layer >= 0 ? c.layer : seed.model.config().num_hidden_layers / 2;
  log::info(str_cat("context indicator: scoring ", turns.size(), " turns with ",
                    seed_dir, " at layer ", layer));
  const std::vector<double> scores = score_context_dependency(seed.model, tokens, layer);
  int64_t flagged = 0;
  for (size_t t = 0; t < turns.size(); ++t) {
    const bool flag = scores[t] > c.beta;
    data::SftRecord& rec = p.records[turns[t].record];
    json& listed = p.annotations[turns[t].record]["turns"];
    if (!listed.is_array()) listed = json::array();
    listed.push_back({{"message", turns[t].user_message}, {"score", scores[t]}, {"flagged", flag}});
    if (flag) {
      rec.messages[turns[t].user_message].content = with_indicator(rec.messages[turns[t].user_message].content);
      ++flagged;
    }
  }
  p.summary["context_indicator"] = {
      {"seed_model", seed_dir}, {"layer", layer}, {"beta", c.beta},
      {"turns", turns.size()}, {"flagged", flagged},
      {"share_flagged", turns.empty() ? 0.0 : static_cast<double>(flagged) / static_cast<double>(turns.size())}};
}

}  // namespace

data::SftDataset load_sft_dataset(const TrainConfig& cfg) {
  return data::SftDataset::load_jsonl(cfg.data.train, {cfg.data.prompt_key, cfg.sft.response_key, cfg.sft.text_key});
}

PreparedSft prepare_sft_data(const TrainConfig& cfg, data::SftDataset records, Pretrained& policy,
                             const data::ChatTemplate& chat) {
  PreparedSft p;
  p.records = std::move(records);
  p.annotations.assign(p.records.size(), json::object());
  p.summary = {{"mode", enum_name(cfg.sft.mode)}, {"records", p.records.size()}};
  SftTokenization tok;
  tok.loss_on_prompt = cfg.sft.loss_on_prompt;
  tok.max_tokens = policy.model.config().max_position_embeddings;
  if (cfg.sft.mode == SftMode::conditional) {
    apply_conditional(cfg, p);
    const auto ids = add_special_tokens(policy, {kGoodToken, kBadToken}, cfg.sft.conditional.embedding_noise_std,
                                        cfg.train.seed);
    if (cfg.sft.conditional.mask_control_tokens) tok.masked_ids = ids;
  } else if (cfg.sft.mode == SftMode::context_indicator) {
    apply_context_indicator(cfg, p, policy, chat);
    add_special_tokens(policy, {kIndicatorToken}, cfg.sft.context_indicator.embedding_noise_std, cfg.train.seed);
  }
  int64_t tokens = 0, loss_tokens = 0;
  for (size_t r = 0; r < p.records.size(); ++r) {
    p.examples.push_back(tokenize_sft_record(p.records[r], policy.tokenizer, chat, tok, p.records.where(r)));
    tokens += static_cast<int64_t>(p.examples.back().prompt_ids.size() + p.examples.back().target_ids.size());
    loss_tokens += p.examples.back().loss_tokens();
  }
  p.summary["tokens"] = tokens;
  p.summary["loss_tokens"] = loss_tokens;
  return p;
}

void write_prepared_sft(const std::string& path, const PreparedSft& p, const Tokenizer& tokenizer) {
  std::string out;
  for (size_t r = 0; r < p.records.size(); ++r) {
    const data::SftRecord& rec = p.records[r];
    const SftExample& ex = p.examples[r];
    json messages = json::array();
    for (const auto& m : rec.messages) messages.push_back({{"role", m.role}, {"content", m.content}});
    std::vector<int64_t> ids = ex.prompt_ids;
    ids.insert(ids.end(), ex.target_ids.begin(), ex.target_ids.end());
    // The loss mask as text: the tokens in the loss, decoded (special tokens shown).
    std::vector<int64_t> in_loss;
    for (size_t t = 0; t < ex.target_ids.size(); ++t)
      if (ex.target_loss[t]) in_loss.push_back(ex.target_ids[t]);
    json line = {{"line", rec.line}, {"kind", data::sft_record_kind_name(rec.kind)}, {"messages", messages},
                 {"text", tokenizer.decode(ids, false)}, {"tokens", ids.size()}, {"loss_tokens", ex.loss_tokens()},
                 {"loss_text", tokenizer.decode(in_loss, false)}};
    for (const auto& [k, v] : p.annotations[r].items()) line[k] = v;
    out += line.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  }
  write_text_file_atomic(path, out);
}

}  // namespace anchor::sft
