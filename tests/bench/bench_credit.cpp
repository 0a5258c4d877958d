// Benchmark: the cost of a credit map on one long sequence — streaming (anchor-rl's path:
// chunked attention reduced into O(N) sums) vs naive (every observed layer's full [H, N, N]
// attention kept, then reduced, as a separate output_attentions pass would) vs no credit at
// all (the plain no-grad forward). One mode per process so that peak RSS is the mode's own;
// prints one JSON line. scripts/bench/bench_credit.sh runs the grid and prints the table.
//   anchor-bench-credit --mode none|streaming|naive --tokens N [--layers L] [--heads H]
//                       [--hidden D] [--threads T] [--chunk-rows C]
#include <sys/resource.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <string>

#include "credit/credit_map.h"
#include "trainer/model/llama_model.h"
#include "trainer/rl/policy_pass.h"
#include "trainer/rollout/step_batch.h"

namespace {

double rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

double current_rss_mb() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  long pages = 0, resident = 0;
  if (f) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return static_cast<double>(resident) * 4096.0 / (1024.0 * 1024.0);
}

// Keeps every observed layer's full attention (the naive approach).
struct KeepFullAttention : anchor::AttentionObserver {
  std::vector<int64_t> layers;
  std::map<int64_t, at::Tensor> maps;  // layer -> [H, N, N]
  int64_t n = 0;
  bool observes_layer(int64_t l) const override { return std::find(layers.begin(), layers.end(), l) != layers.end(); }
  int64_t chunk_rows() const override { return n; }
  void on_chunk(const anchor::AttentionChunk& c) override { maps[c.layer] = c.probs[0].clone(); }
};

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> args = {{"--mode", "streaming"}, {"--tokens", "1024"}, {"--layers", "8"},
                                             {"--heads", "8"},        {"--hidden", "256"},   {"--threads", "0"},
                                             {"--chunk-rows", "128"}};
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!args.count(argv[i])) {
      std::cerr << "anchor-bench-credit: unknown option " << argv[i] << "\n";
      return 2;
    }
    args[argv[i]] = argv[i + 1];
  }
  const std::string mode = args["--mode"];
  const int64_t N = std::stoll(args["--tokens"]), L = std::stoll(args["--layers"]), H = std::stoll(args["--heads"]),
                D = std::stoll(args["--hidden"]);
  if (std::stoi(args["--threads"]) > 0) at::set_num_threads(std::stoi(args["--threads"]));
  const nlohmann::json cfg = {{"vocab_size", 256},         {"hidden_size", D},        {"intermediate_size", 2 * D},
                              {"num_hidden_layers", L},    {"num_attention_heads", H}, {"num_key_value_heads", 2},
                              {"max_position_embeddings", 32768}, {"tie_word_embeddings", true}, {"bos_token_id", 1},
                              {"eos_token_id", 2}};
  anchor::LlamaModel model(anchor::parse_llama_config(cfg, "bench"), torch::TensorOptions().dtype(torch::kFloat), 1);
  model.set_requires_grad(false);
  torch::manual_seed(0);
  const int64_t P = 16;
  std::vector<int64_t> prompt(P), response(N - P);
  for (auto& t : prompt) t = torch::randint(3, 256, {1}).item<int64_t>();
  for (auto& t : response) t = torch::randint(3, 256, {1}).item<int64_t>();
  const anchor::StepBatch batch = anchor::pad_sequences({&prompt}, {&response}, 0);
  anchor::credit::CreditOptions o;
  o.chunk_rows = std::stoll(args["--chunk-rows"]);
  o.layers = {anchor::credit::LayerMode::default_spread, {}};  // the steady state of a run: five observed layers
  const std::vector<int64_t> layers = anchor::credit::observed_layers(o.layers, L);
  const double base_rss = current_rss_mb();

  torch::NoGradGuard no_grad;
  const auto start = std::chrono::steady_clock::now();
  double reduce_seconds = 0, checksum = 0;
  if (mode == "none") {
    checksum = anchor::policy_pass(model, batch, 1.0, 1, false).logprobs.sum().item<double>();
  } else if (mode == "streaming") {
    const anchor::PolicyPass pass = anchor::policy_pass(model, batch, 1.0, 1, false, &o);
    const auto m = anchor::credit::build_credit_map(*pass.attention, o);
    reduce_seconds = pass.credit_seconds;
    checksum = m.waad.sum().item<double>() + m.fai.sum().item<double>();
  } else if (mode == "naive") {
    KeepFullAttention keep;
    keep.layers = layers;
    keep.n = N;
    anchor::ForwardInputs in = anchor::padded_batch_inputs(torch::cat({batch.prompt_ids, batch.response_ids}, 1),
                                                           torch::ones({1, N}, torch::kBool));
    in.observer = &keep;
    model.forward(in);
    const auto t0 = std::chrono::steady_clock::now();
    const at::Tensor A = torch::cat([&] {
      std::vector<at::Tensor> v;
      for (auto& [l, m] : keep.maps) v.push_back(m);
      return v;
    }());  // [J, N, N]: all observed layers held at once
    const at::Tensor pos = torch::arange(N, torch::kFloat);
    const at::Tensor dist = (pos.unsqueeze(1) - pos.unsqueeze(0)).clamp_min(0);
    const at::Tensor rows = A.slice(1, P, N);
    const at::Tensor d = (rows * dist.slice(0, P, N)).sum(-1).mean(-1);  // [J]
    const at::Tensor order = std::get<1>(d.sort());
    const int64_t c = anchor::credit::top_count(o.head_quantile, d.size(0));
    const at::Tensor local = A.index_select(0, order.slice(0, 0, c)).mean(0);
    const at::Tensor global = A.index_select(0, order.slice(0, d.size(0) - c, d.size(0))).mean(0);
    const at::Tensor waad = (local.slice(0, P, N) * dist.slice(0, P, N).clamp_max(o.window)).sum(-1);
    const at::Tensor gap = dist.slice(0, P, N).slice(1, P, N);
    const at::Tensor band = gap.ge(o.horizon_low).logical_and(gap.le(o.horizon_high)).to(torch::kFloat);
    const at::Tensor fai = (global.slice(0, P, N).slice(1, P, N) * band).sum(0) / band.sum(0).clamp_min(1);
    reduce_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    checksum = waad.sum().item<double>() + fai.sum().item<double>();
  } else {
    std::cerr << "anchor-bench-credit: --mode none|streaming|naive\n";
    return 2;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << nlohmann::json{{"mode", mode},
                              {"tokens", N},
                              {"layers", L},
                              {"heads", H},
                              {"observed_layers", layers},
                              {"seconds", seconds},
                              {"reduce_seconds", reduce_seconds},
                              {"peak_rss_mb", rss_mb()},
                              {"extra_peak_mb", rss_mb() - base_rss},
                              {"threads", at::get_num_threads()},
                              {"checksum", checksum}}
                   .dump()
            << std::endl;
  return 0;
}
