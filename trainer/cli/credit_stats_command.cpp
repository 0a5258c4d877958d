// `anchor-rl credit-stats`: how a model's attention looks through the credit formulas, over
// many responses (docs/design.md §5.7). One streamed pass over every layer with sinks kept and one with
// sinks excluded give: the per-layer table of head look-back distances and sink shares, the
// layers `credit.layers: auto` would choose, the local / global head groups, and the
// preplan -> anchor coupling statistics (credit/coupling.h) with their lag profile against
// random positions, for default vs chosen layers, keep vs exclude and several role sparsities;
// and how much ranking heads per micro-batch (credit.head_ranking: micro_batch) changes the map.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdio>
#include <iostream>
#include <memory>

#include "credit/coupling.h"
#include "credit/credit_map.h"
#include "credit/layer_choice.h"
#include "credit/token_weights.h"
#include "data/prompt_dataset.h"
#include "trainer/cli/commands.h"
#include "trainer/cli/device_options.h"
#include "trainer/common/error.h"
#include "trainer/common/file_util.h"
#include "trainer/common/log.h"
#include "trainer/config/train_config.h"
#include "trainer/model/pretrained.h"
#include "trainer/rl/policy_pass.h"
#include "trainer/rollout/sampler.h"

namespace anchor::cli {
namespace {

struct CreditStatsOptions {
  std::string model_dir, data, prompt_key = "prompt", response_key = "response", prompt_template = "auto";
  int64_t generate = 100;   // responses to sample (0: read --response-key)
  int64_t limit = 100;      // rows read with --generate 0
  int64_t batch = 16, micro_batch = 8;
  std::vector<double> fractions = {0.05, 0.1, 0.2, 0.4};
  std::vector<int64_t> ranking_micro_batches = {4, 8, 16};
  std::string config, out;
  std::vector<std::string> overrides;
  SamplingParams sampling;
  DeviceOptions device;
};

std::string fmt(const char* f, double a) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, a);
  return buf;
}

nlohmann::json coupling_json(const credit::CouplingStatistic& c) {
  nlohmann::json j = {{"definition", c.definition}, {"responses", c.responses}, {"events", c.events},
                      {"share", c.share}, {"share_se", c.share_se}, {"random", c.random},
                      {"excess", c.excess}, {"excess_se", c.excess_se}};
  if (!c.lags.empty()) {
    j["lags"] = c.lags;
    j["lag_share"] = c.lag_share;
    j["lag_random"] = c.lag_random;
    j["lag_excess_se"] = c.lag_excess_se;
  }
  return j;
}

nlohmann::json profile_json(const credit::LayerProfile& p) {
  return {{"layer", p.layer}, {"mean_lookback", p.mean_lookback}, {"min_lookback", p.min_lookback},
          {"max_lookback", p.max_lookback}, {"first_token_share", p.first_token_share},
          {"sink_share", p.sink_share}, {"sink_heads", p.sink_heads}, {"local_heads", p.local_heads},
          {"global_heads", p.global_heads}};
}

// Ranking scope (credit.head_ranking): how much ranking heads within micro-batches of m rows
// changes the map against ranking over the whole batch — the share of (response, head) pairs
// whose group changes, of response tokens whose preplan / anchor flag changes, and of tokens
// whose coupled-strategy γ changes.
nlohmann::json ranking_scope(const credit::AttentionStatistics& st, const credit::CreditOptions& base,
                             const std::vector<int64_t>& micro_sizes, const std::string& label) {
  credit::CreditOptions batch_options = base;
  batch_options.head_ranking = credit::HeadRanking::batch;
  batch_options.strategy = credit::CreditStrategy::coupled;
  const credit::CreditMap whole = credit::build_credit_map(st, batch_options);
  auto gamma_of = [&](const credit::CreditMap& m, const at::Tensor& lengths, const credit::CreditOptions& c) {
    credit::WeightInputs w;
    w.response_lengths = lengths;
    w.width = m.valid.size(1);
    w.map = &m;
    return credit::token_weights(w, c);
  };
  const at::Tensor whole_gamma = gamma_of(whole, st.response_lengths, batch_options);
  const int64_t B = st.response_lengths.size(0);
  nlohmann::json out = nlohmann::json::array();
  for (int64_t m : micro_sizes) {
    credit::CreditOptions c = batch_options;
    c.head_ranking = credit::HeadRanking::micro_batch;
    double head_pairs = 0, heads_changed = 0, tokens = 0, preplan_changed = 0, anchor_changed = 0, gamma_changed = 0;
    for (int64_t r0 = 0; r0 < B; r0 += m) {
      const at::Tensor rows = torch::arange(r0, std::min(B, r0 + m), torch::kLong);
      const credit::AttentionStatistics part = credit::select_rows(st, rows);
      const credit::CreditMap map = credit::build_credit_map(part, c);
      const at::Tensor valid = map.valid;
      auto changed = [&](const at::Tensor& mine, const at::Tensor& all) {
        return mine.ne(all.index_select(0, rows)).logical_and(valid).sum().item<double>();
      };
      head_pairs += static_cast<double>(rows.size(0) * st.num_heads());
      heads_changed += map.heads.local.ne(whole.heads.local.index_select(0, rows))
                           .logical_or(map.heads.global.ne(whole.heads.global.index_select(0, rows)))
                           .sum()
                           .item<double>();
      tokens += valid.sum().item<double>();
      preplan_changed += changed(map.preplan, whole.preplan);
      anchor_changed += changed(map.anchor, whole.anchor);
      gamma_changed += changed(gamma_of(map, part.response_lengths, c), whole_gamma);
    }
    const nlohmann::json row = {{"micro_batch", m},
                                {"head_groups_changed", heads_changed / std::max(1.0, head_pairs)},
                                {"preplan_changed", preplan_changed / std::max(1.0, tokens)},
                                {"anchor_changed", anchor_changed / std::max(1.0, tokens)},
                                {"gamma_changed", gamma_changed / std::max(1.0, tokens)}};
    std::cout << "  " << label << " | " << m << " | " << fmt("%.3f", row["head_groups_changed"].get<double>()) << " | "
              << fmt("%.3f", row["preplan_changed"].get<double>()) << " | "
              << fmt("%.3f", row["anchor_changed"].get<double>()) << " | "
              << fmt("%.3f", row["gamma_changed"].get<double>()) << "\n";
    out.push_back(row);
  }
  return out;
}

int run_credit_stats(const CreditStatsOptions& o) {
  const TrainConfig cfg = o.config.empty() ? parse_train_config("", "--set", o.overrides, ConfigUse::credit)
                                           : load_train_config(o.config, o.overrides, ConfigUse::credit);
  const at::TensorOptions options = resolve_device(o.device);
  const Pretrained policy = load_pretrained(o.model_dir, options);
  const int64_t L = policy.model.config().num_hidden_layers;
  const data::ChatTemplate chat = chat_template_for(policy, o.prompt_template, "--template");
  const auto dataset = data::PromptDataset::load_jsonl(o.data, o.prompt_key);
  AR_CHECK(dataset.size() > 0, o.data, ": no rows");
  dataset.check_renders_with(chat, "--template");

  // Responses: sampled (prompts taken from the top of the file, cycling) or read.
  std::vector<std::vector<int64_t>> prompts, responses;
  const int64_t n = o.generate > 0 ? o.generate : std::min<int64_t>(o.limit, static_cast<int64_t>(dataset.size()));
  for (int64_t i = 0; i < n; ++i) {
    const data::Example& ex = dataset[static_cast<size_t>(i) % dataset.size()];
    prompts.push_back(encode_prompt(policy.tokenizer, chat, chat.render(ex.conversation(), true)));
    if (o.generate == 0) {
      AR_CHECK(ex.row.contains(o.response_key) && ex.row[o.response_key].is_string(), o.data, ":", ex.line,
               ": no string field '", o.response_key, "' (use --generate N to sample responses)");
      responses.push_back(policy.tokenizer.encode(ex.row[o.response_key].get<std::string>(), false));
    }
  }
  if (o.generate > 0) {
    for (int64_t s = 0; s < n; s += o.batch) {
      std::vector<std::vector<int64_t>> chunk(prompts.begin() + s, prompts.begin() + std::min(n, s + o.batch));
      SamplingParams sp = o.sampling;
      sp.seed = o.sampling.seed + static_cast<uint64_t>(s);
      const RolloutBatch rb = generate(policy.model, policy.tokenizer, chunk, sp);
      for (size_t i = 0; i < chunk.size(); ++i) {
        const int64_t len = rb.response_mask[static_cast<int64_t>(i)].sum().item<int64_t>();
        const at::Tensor ids = rb.response_ids[static_cast<int64_t>(i)].slice(0, 0, len).contiguous();
        responses.emplace_back(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + len);
      }
      std::cerr << "credit-stats: sampled " << responses.size() << " / " << n << " responses\n";
    }
  }
  std::vector<const std::vector<int64_t>*> pp, rr;
  int64_t tokens = 0;
  for (int64_t i = 0; i < n; ++i) {
    pp.push_back(&prompts[static_cast<size_t>(i)]);
    rr.push_back(&responses[static_cast<size_t>(i)]);
    tokens += static_cast<int64_t>(responses[static_cast<size_t>(i)].size());
  }
  const StepBatch batch = pad_sequences(pp, rr, policy.tokenizer.padding_id());

  // One pass per sink mode over every layer.
  credit::CreditOptions base = cfg.credit;
  base.layers = {credit::LayerMode::all, {}};
  std::map<std::string, credit::AttentionStatistics> stats;
  for (const std::string mode : {"keep", "exclude"}) {
    credit::CreditOptions c = base;
    enum_from_name(mode, c.sinks);
    stats[mode] = *policy_pass(policy.model, batch, 1.0, o.micro_batch, false, &c).attention;
  }
  const auto keep_profiles = credit::layer_profiles(stats["keep"], base);
  const auto excl_profiles = credit::layer_profiles(stats["exclude"], base);
  const std::vector<int64_t> default_layers = credit::observed_layers({credit::LayerMode::default_spread, {}}, L);
  const std::vector<int64_t> auto_layers = credit::choose_layers(excl_profiles, L, base.auto_layer_count);

  nlohmann::json report = {{"model", o.model_dir}, {"data", o.data}, {"responses", n}, {"response_tokens", tokens},
                           {"heads_per_layer", policy.model.config().num_attention_heads},
                           {"window", base.window}, {"horizon_low", base.horizon_low},
                           {"sink_key_share", base.sink_key_share}, {"sink_query_share", base.sink_query_share},
                           {"sink_head_share", base.sink_head_share}, {"default_layers", default_layers},
                           {"auto_layers", auto_layers}};
  std::cout << "credit-stats: " << n << " responses, " << tokens << " response tokens, " << L << " layers x "
            << policy.model.config().num_attention_heads << " heads\n\n"
            << "per layer (d = mean look-back distance of a head over response tokens, pooled over responses)\n"
            << "layer | d keep | d exclude (min-max) | token-0 share | sink share | sink heads | local | global\n";
  for (size_t i = 0; i < excl_profiles.size(); ++i) {
    const auto& k = keep_profiles[i];
    const auto& e = excl_profiles[i];
    std::cout << fmt("%5.0f", static_cast<double>(e.layer)) << " | " << fmt("%6.1f", k.mean_lookback) << " | "
              << fmt("%5.1f", e.mean_lookback) << " (" << fmt("%.1f", e.min_lookback) << "-"
              << fmt("%.1f", e.max_lookback) << ") | " << fmt("%.3f", e.first_token_share) << " | "
              << fmt("%.3f", e.sink_share) << " | " << e.sink_heads << " | " << e.local_heads << " | "
              << e.global_heads << "\n";
    nlohmann::json row = profile_json(e);
    row["mean_lookback_keep"] = k.mean_lookback;
    row["local_heads_keep"] = k.local_heads;
    row["global_heads_keep"] = k.global_heads;
    report["layers"].push_back(row);
  }
  auto list = [](const std::vector<int64_t>& v) {
    std::string s;
    for (int64_t x : v) s += (s.empty() ? "" : ",") + std::to_string(x);
    return s;
  };
  std::cout << "\nlocal = non-sink heads with d <= " << base.window << ", global = non-sink heads with d >= "
            << 2 * base.horizon_low << ", sink heads: sink share > " << base.sink_head_share
            << "\ndefault layers " << list(default_layers) << "; auto layers " << list(auto_layers) << "\n";

  // Head groups and coupling per setting.
  std::cout << "\nsetting | q | anchors | anchor after preplan (0.." << 3
            << "): share / random / excess +- se | lag -3..+3 excess | preplan then anchor: share / random / excess +- se\n";
  const std::vector<std::pair<std::string, std::vector<int64_t>>> layer_sets = {{"default", default_layers},
                                                                                {"auto", auto_layers}};
  for (const auto& [layer_name, layers] : layer_sets) {
    for (const std::string mode : {"keep", "exclude"}) {
      const credit::AttentionStatistics st = credit::select_layers(stats[mode], layers);
      nlohmann::json setting = {{"layers", layer_name}, {"observed_layers", layers}, {"sinks", mode}};
      for (double q : o.fractions) {
        credit::CreditOptions c = base;
        enum_from_name(mode, c.sinks);
        c.token_fraction = q;
        const credit::CreditMap m = credit::build_credit_map(st, c);
        if (!setting.contains("groups")) {
          nlohmann::json groups = {{"local", nlohmann::json::array()}, {"global", nlohmann::json::array()}};
          for (int64_t j = 0; j < st.num_heads(); ++j) {
            const nlohmann::json head = {{"layer", layers[static_cast<size_t>(j / st.heads)]}, {"head", j % st.heads},
                                         {"lookback", m.head_distance[0][j].item<double>()},
                                         {"sink_share", m.head_sink_share[0][j].item<double>()}};
            if (m.heads.local[0][j].item<bool>()) groups["local"].push_back(head);
            if (m.heads.global[0][j].item<bool>()) groups["global"].push_back(head);
          }
          auto mean_of = [](const nlohmann::json& g, const char* key) {
            double s = 0;
            for (const auto& h : g) s += h[key].get<double>();
            return g.empty() ? 0.0 : s / static_cast<double>(g.size());
          };
          std::cout << layer_name << "/" << mode << " groups: local " << groups["local"].size() << " heads (mean d "
                    << fmt("%.1f", mean_of(groups["local"], "lookback")) << ", sink share "
                    << fmt("%.2f", mean_of(groups["local"], "sink_share")) << "), global " << groups["global"].size()
                    << " heads (mean d " << fmt("%.1f", mean_of(groups["global"], "lookback")) << ", sink share "
                    << fmt("%.2f", mean_of(groups["global"], "sink_share")) << ")\n";
          setting["groups"] = groups;
        }
        const credit::CouplingStatistic ours = credit::anchor_after_preplan(m.preplan, m.anchor, st.response_lengths, 3);
        const credit::CouplingStatistic paper = credit::preplan_then_anchor(m.preplan, m.anchor, st.response_lengths);
        std::string lags;
        for (size_t i = 0; i < ours.lags.size(); ++i)
          lags += (i ? " " : "") + fmt("%+.3f", ours.lag_share[i] - ours.lag_random[i]);
        std::cout << "  " << layer_name << "/" << mode << " | " << q << " | " << ours.events << " | "
                  << fmt("%.3f", ours.share) << " / " << fmt("%.3f", ours.random) << " / "
                  << fmt("%+.3f", ours.excess) << " +- " << fmt("%.3f", ours.excess_se) << " | " << lags << " | "
                  << fmt("%.3f", paper.share) << " / " << fmt("%.3f", paper.random) << " / "
                  << fmt("%+.3f", paper.excess) << " +- " << fmt("%.3f", paper.excess_se) << "\n";
        setting["coupling"].push_back({{"token_fraction", q}, {"anchor_after_preplan", coupling_json(ours)},
                                       {"preplan_then_anchor", coupling_json(paper)}});
      }
      report["settings"].push_back(setting);
    }
  }
  std::cout << "\nranking scope: heads ranked per micro-batch of m responses vs over all " << n
            << " (share changed: (response, head) group pairs | preplan flags | anchor flags | coupled γ)\n"
            << "setting | m | head groups | preplan | anchor | γ\n";
  for (const auto& [layer_name, layers] : layer_sets) {
    for (const std::string mode : {"keep", "exclude"}) {
      credit::CreditOptions c = base;
      enum_from_name(mode, c.sinks);
      report["ranking_scope"][layer_name + "/" + mode] =
          ranking_scope(credit::select_layers(stats[mode], layers), c, o.ranking_micro_batches, layer_name + "/" + mode);
    }
  }
  if (!o.out.empty()) {
    write_text_file_atomic(o.out, report.dump(1) + "\n");
    std::cout << "\n  " << o.out << "\n";
  }
  return 0;
}

}  // namespace

Action register_credit_stats(CLI::App& app) {
  auto o = std::make_shared<CreditStatsOptions>();
  o->sampling.max_new_tokens = 160;
  o->sampling.temperature = 0.7;
  CLI::App* sub = app.add_subcommand("credit-stats", "Attention through the credit formulas over many responses: "
                                                     "per-layer look-back / sink table, head groups, auto layers, "
                                                     "preplan -> anchor coupling vs random (sinks keep vs exclude)");
  sub->add_option("--model", o->model_dir, "Model directory")->required()->check(CLI::ExistingDirectory);
  sub->add_option("--data", o->data, "JSONL prompts (prompt field or chat messages)")->required()->check(CLI::ExistingFile);
  sub->add_option("--generate", o->generate, "Responses to sample, one per prompt from the top (0: read --response-key)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  sub->add_option("--limit", o->limit, "Rows read with --generate 0")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--prompt-key", o->prompt_key, "Field holding the prompt")->capture_default_str();
  sub->add_option("--response-key", o->response_key, "Field holding the response (--generate 0)")->capture_default_str();
  sub->add_option("--template", o->prompt_template, "auto | plain | chatml | llama3 | qwen | a string with {prompt}")
      ->capture_default_str();
  sub->add_option("--config", o->config, "A run config whose credit: section is used")->check(CLI::ExistingFile);
  sub->add_option("--set", o->overrides, "credit.key=value override (repeatable)");
  sub->add_option("--fractions", o->fractions, "Role sparsities (credit.token_fraction) to measure")
      ->capture_default_str();
  sub->add_option("--max-new-tokens", o->sampling.max_new_tokens, "Generation budget")->capture_default_str();
  sub->add_option("--temperature", o->sampling.temperature, "Sampling temperature, 0 = greedy")->capture_default_str();
  sub->add_option("--seed", o->sampling.seed, "Sampling seed")->capture_default_str();
  sub->add_option("--batch", o->batch, "Generation batch")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--micro-batch", o->micro_batch, "Rows per observed forward")->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--ranking-micro-batches", o->ranking_micro_batches,
                  "Micro-batch sizes whose head ranking is compared with the whole batch's")
      ->capture_default_str();
  sub->add_option("--out", o->out, "Write the numbers as JSON here");
  add_device_options(*sub, o->device);
  return [sub, o]() -> int {
    if (!sub->parsed()) return -1;
    return run_credit_stats(*o);
  };
}

}  // namespace anchor::cli
