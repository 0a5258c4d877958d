#include "trainer/analysis/credit_analysis.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "credit/credit_map.h"
#include "credit/layer_choice.h"
#include "credit/sentence_segmentation.h"
#include "credit/token_weights.h"
#include "trainer/common/error.h"
#include "trainer/model/unicode_text.h"
#include "trainer/rl/policy_pass.h"
#include "trainer/rollout/step_batch.h"

namespace anchor {
namespace {

nlohmann::json number_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

// Next-token log-distributions [T, V] of one sequence with the keys in `hidden` masked in
// every layer (none when empty).
at::Tensor next_token_logprobs(const LlamaModel& model, const std::vector<int64_t>& ids, int64_t hidden_begin,
                               int64_t hidden_end) {
  torch::NoGradGuard no_grad;
  const int64_t T = static_cast<int64_t>(ids.size());
  ForwardInputs in;
  in.input_ids = torch::tensor(ids, torch::kLong).view({1, T}).to(model.device());
  in.position_ids = torch::arange(T, torch::kLong).view({1, T}).to(model.device());
  at::Tensor mask = torch::ones({1, T}, torch::kBool);
  if (hidden_end > hidden_begin) mask.slice(1, hidden_begin, hidden_end).fill_(false);
  in.key_mask = mask.to(model.device());
  return torch::log_softmax(model.forward(in)[0].to(torch::kFloat), -1).cpu();
}

}  // namespace

nlohmann::json analyze_credit(const Pretrained& policy, const CreditAnalysisInput& input,
                              const CreditAnalysisOptions& o) {
  const LlamaModel& model = policy.model;
  const Tokenizer& tok = policy.tokenizer;
  AR_CHECK(!input.prompt_ids.empty(), "credit: the prompt needs at least one token (this tokenizer adds no BOS: give "
           "--prompt, or a chat template with --template)");
  const int64_t P = static_cast<int64_t>(input.prompt_ids.size());
  const int64_t R = static_cast<int64_t>(input.response_ids.size());
  AR_CHECK(R > 0, "credit: the response is empty; nothing to analyse");

  // Sentences of the response and their tokens.
  const Decoding d = tok.decode_with_spans(input.response_ids);
  const auto sentences = credit::segment_sentences(d.text, o.credit.min_sentence_chars);
  const std::vector<int64_t> token_sentence = credit::token_sentence_ids(d.text, d.spans, sentences);
  const int64_t S = static_cast<int64_t>(sentences.size());
  std::vector<int64_t> first_token(static_cast<size_t>(S), -1), last_token(static_cast<size_t>(S), -1);
  for (int64_t r = 0; r < R; ++r) {
    const int64_t s = token_sentence[static_cast<size_t>(r)];
    if (s < 0) continue;
    if (first_token[static_cast<size_t>(s)] < 0) first_token[static_cast<size_t>(s)] = r;
    last_token[static_cast<size_t>(s)] = r;
  }

  // The credit map: one observed pass (with entropies for the entropy baseline).
  std::vector<const std::vector<int64_t>*> prompts = {&input.prompt_ids}, responses = {&input.response_ids};
  const StepBatch batch = pad_sequences(prompts, responses, 0);
  const at::Tensor sentence_ids = torch::tensor(token_sentence, torch::kLong).view({1, R});
  PolicyPass pass = policy_pass(model, batch, 1.0, 1, true, &o.credit, sentence_ids);
  std::string layer_choice = enum_name(o.credit.layers.mode);
  if (o.credit.layers.mode == credit::LayerMode::automatic) {  // no run chose: choose from this response's attention
    const auto profiles = credit::layer_profiles(*pass.attention, o.credit);
    pass.attention = credit::select_layers(*pass.attention, credit::choose_layers(profiles, model.config().num_hidden_layers, o.credit.auto_layer_count));
    layer_choice = "auto (measured on this response)";
  }
  const credit::CreditMap map = credit::build_credit_map(*pass.attention, o.credit, nullptr, sentence_ids);
  credit::WeightInputs wi;
  wi.response_lengths = torch::tensor({R}, torch::kLong);
  wi.width = R;
  wi.map = &map;
  wi.entropy = pass.entropy;
  wi.seed = o.seed;
  std::map<std::string, at::Tensor> gammas;
  for (const credit::CreditStrategy strategy : credit::credit_strategies()) {
    if (credit::strategy_sets_token_advantages(strategy)) continue;  // gtpo needs a group of rollouts, not one
    credit::CreditOptions so = o.credit;
    so.strategy = strategy;
    gammas[enum_name(strategy)] = credit::token_weights(wi, so);
  }

  nlohmann::json out;
  out["prompt"] = input.prompt_text;
  out["prompt_ids"] = input.prompt_ids;
  out["response"] = d.text;
  out["observed_layers"] = pass.attention->layers;
  out["layer_choice"] = layer_choice;
  out["heads_per_layer"] = pass.attention->heads;
  out["sinks"] = enum_name(o.credit.sinks);
  // Sink keys (5.7): heads of the observed layers for which each prompt / response token is a sink.
  const at::Tensor prompt_sinks = pass.attention->prompt_sink_heads.sum(1)[0].contiguous();
  const at::Tensor response_sinks = pass.attention->response_sink_heads.sum(1)[0].contiguous();
  nlohmann::json sink_list = nlohmann::json::array();
  for (int64_t p = 0; p < prompt_sinks.numel(); ++p) {
    const int64_t n = prompt_sinks[p].item<int64_t>();
    if (n == 0 || static_cast<size_t>(p) >= input.prompt_ids.size()) continue;
    sink_list.push_back({{"index", p},
                         {"text", policy.tokenizer.decode({input.prompt_ids[static_cast<size_t>(p)]}, false)},
                         {"heads", n}});
  }
  out["prompt_sinks"] = sink_list;
  nlohmann::json heads = nlohmann::json::array();
  const int64_t J = pass.attention->num_heads();
  for (int64_t j = 0; j < J; ++j) {
    const bool receiver = std::find(map.receiver_heads.begin(), map.receiver_heads.end(), j) != map.receiver_heads.end();
    heads.push_back({{"layer", pass.attention->layers[static_cast<size_t>(j / pass.attention->heads)]},
                     {"head", j % pass.attention->heads},
                     {"lookback_distance", map.head_distance[0][j].item<double>()},
                     {"sink_share", map.head_sink_share[0][j].item<double>()},
                     {"sink_dominated", !map.eligible_heads[0][j].item<bool>()},
                     {"group", map.heads.local[0][j].item<bool>()    ? "local"
                               : map.heads.global[0][j].item<bool>() ? "global"
                                                                     : "middle"},
                     {"receiver", receiver}});
  }
  out["heads"] = heads;

  nlohmann::json tokens = nlohmann::json::array();
  for (int64_t r = 0; r < R; ++r) {
    const auto [a, b] = d.spans[static_cast<size_t>(r)];
    nlohmann::json g;
    for (const auto& [name, gamma] : gammas) g[name] = gamma[0][r].item<double>();
    tokens.push_back({{"index", r},
                      {"id", input.response_ids[static_cast<size_t>(r)]},
                      // Byte-level tokens may split a character: show whole characters on the
                      // token where they start (the span keeps the exact bytes).
                      {"text", unicode::chars_starting_in(d.text, a, b)},
                      {"span", {a, b}},
                      {"logprob", pass.logprobs[0][r].item<double>()},
                      {"entropy", pass.entropy[0][r].item<double>()},
                      {"waad", map.waad[0][r].item<double>()},
                      {"fai", map.fai[0][r].item<double>()},
                      {"delta", map.delta[0][r].item<double>()},
                      {"preplan", map.preplan[0][r].item<bool>()},
                      {"anchor", map.anchor[0][r].item<bool>()},
                      {"dominated", map.dominated[0][r].item<bool>()},
                      {"intro", map.intro[0][r].item<bool>()},
                      {"sink_heads", response_sinks[r].item<int64_t>()},
                      {"sentence", token_sentence[static_cast<size_t>(r)]},
                      {"gamma", g}});
  }
  out["tokens"] = tokens;

  nlohmann::json sents = nlohmann::json::array();
  for (int64_t s = 0; s < S; ++s) {
    const auto [a, b] = sentences[static_cast<size_t>(s)];
    const int64_t f = first_token[static_cast<size_t>(s)];
    sents.push_back({{"index", s},
                     {"text", d.text.substr(a, b - a)},
                     {"span", {a, b}},
                     {"tokens", {f, last_token[static_cast<size_t>(s)] + 1}},
                     {"receiver_score", number_or_null(map.sentence_scores[0][s].item<double>())},
                     {"thought_anchor", f >= 0 && map.anchor_sentence_tokens[0][f].item<bool>()}});
  }

  // Attention suppression (docs/design.md §5.6): hide sentence k's tokens from every later query in
  // all layers and measure how much later sentences' next-token distributions move:
  // mean over their tokens of log KL(unmasked || masked); KL is floored at 1e-10.
  if (o.suppression && S > 0) {
    std::vector<int64_t> ids = input.prompt_ids;
    ids.insert(ids.end(), input.response_ids.begin(), input.response_ids.end());
    const at::Tensor base = next_token_logprobs(model, ids, 0, 0);
    for (int64_t k = 0; k < S; ++k) {
      nlohmann::json row = nlohmann::json::array();
      double total = 0;
      int64_t count = 0;
      const int64_t fk = first_token[static_cast<size_t>(k)], lk = last_token[static_cast<size_t>(k)];
      at::Tensor masked;
      if (fk >= 0) masked = next_token_logprobs(model, ids, P + fk, P + lk + 1);
      for (int64_t j = 0; j < S; ++j) {
        const int64_t fj = first_token[static_cast<size_t>(j)], lj = last_token[static_cast<size_t>(j)];
        if (j <= k || fk < 0 || fj < 0) {
          row.push_back(nullptr);
          continue;
        }
        // Distributions that predict the tokens of sentence j: positions P + r - 1.
        const at::Tensor pb = base.slice(0, P + fj - 1, P + lj), pm = masked.slice(0, P + fj - 1, P + lj);
        const at::Tensor kl = (pb.exp() * (pb - pm)).sum(-1).clamp_min(1e-10);
        const double v = kl.log().mean().item<double>();
        row.push_back(v);
        total += v;
        ++count;
      }
      sents[static_cast<size_t>(k)]["suppression"] = {{"log_kl_to_later", row},
                                                      {"score", count ? nlohmann::json(total / count) : nlohmann::json(nullptr)}};
    }
  }

  // Resampling importance (docs/design.md §5.6): K completions from the prefix that ends before
  // sentence i and K from the prefix that includes it; importance = accuracy with - without.
  if (o.resample > 0 && S > 0) {
    AR_CHECK(o.reward != nullptr, "credit --resample needs a reward to judge answers (--reward)");
    // Row (s, with, k) of the sweep; a prefix that is the whole response needs no sampling.
    std::vector<std::vector<int64_t>> prefixes;
    std::vector<std::vector<int64_t>> prompts_rs;
    std::vector<int64_t> sampled_row;  // index into prompts_rs, -1 = the response itself
    for (int64_t s = 0; s < S; ++s) {
      const int64_t f = first_token[static_cast<size_t>(s)], l = last_token[static_cast<size_t>(s)];
      for (int with = 0; with < 2; ++with) {
        const int64_t cut = f < 0 ? 0 : (with ? l + 1 : f);
        std::vector<int64_t> prefix(input.response_ids.begin(), input.response_ids.begin() + cut);
        for (int64_t k = 0; k < o.resample; ++k) {
          prefixes.push_back(prefix);
          if (cut == R) {
            sampled_row.push_back(-1);
            continue;
          }
          std::vector<int64_t> p = input.prompt_ids;
          p.insert(p.end(), prefix.begin(), prefix.end());
          sampled_row.push_back(static_cast<int64_t>(prompts_rs.size()));
          prompts_rs.push_back(std::move(p));
        }
      }
    }
    SamplingParams sp = o.sampling;
    sp.seed = o.seed;
    RolloutBatch rb;
    if (!prompts_rs.empty()) rb = generate(model, tok, prompts_rs, sp);
    std::vector<double> correct(prefixes.size(), 0.0);
    for (size_t i = 0; i < prefixes.size(); ++i) {
      std::vector<int64_t> full = prefixes[i];
      bool truncated = false;
      if (sampled_row[i] >= 0) {
        const int64_t row = sampled_row[i];
        const int64_t len = rb.response_mask[row].sum().item<int64_t>();
        const int64_t* ids = rb.response_ids[row].data_ptr<int64_t>();
        full.insert(full.end(), ids, ids + len);
        truncated = rb.finish_reasons[static_cast<size_t>(row)] == FinishReason::length;
      }
      const std::string text = tok.decode(full);
      const auto score = o.reward->score(
          {input.prompt_text, text, input.example, static_cast<int64_t>(full.size()), sp.max_new_tokens, truncated});
      correct[i] = score.correct ? 1.0 : 0.0;
    }
    for (int64_t s = 0; s < S; ++s) {
      double acc[2] = {0, 0};
      for (int with = 0; with < 2; ++with)
        for (int64_t k = 0; k < o.resample; ++k)
          acc[with] += correct[static_cast<size_t>((s * 2 + with) * o.resample + k)];
      acc[0] /= static_cast<double>(o.resample);
      acc[1] /= static_cast<double>(o.resample);
      sents[static_cast<size_t>(s)]["resampling"] = {
          {"samples", o.resample}, {"accuracy_without", acc[0]}, {"accuracy_with", acc[1]}, {"importance", acc[1] - acc[0]}};
    }
  }
  out["sentences"] = sents;
  return out;
}

}  // namespace anchor
