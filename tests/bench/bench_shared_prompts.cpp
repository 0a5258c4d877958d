// Benchmark: shared-prompt training passes (Prefix Grouper) vs the unshared batch, as a
// function of the prompt's share of each sequence. For every (prompt, response) length pair it
// times the RL step's two kinds of pass over one batch of `groups` x `samples` sequences, in
// micro-batches, with each layout measured in the same process:
//   no-grad  — the old-policy / reference pass (policy_pass)
//   training — forward + backward of the PPO loss (accumulate_policy_gradients)
// Prints one markdown table row per pair (best of --repeat runs of each).
//   anchor-bench-shared-prompts --model DIR [--pairs 32x128,128x128,...] [--groups 2]
//                               [--samples 8] [--micro 16] [--repeat 2] [--threads 2]
//                               [--profile DIR]  (op traces of the first pair's passes; no table)
#include <malloc.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "trainer/algo/policy_loss.h"
#include "trainer/model/pretrained.h"
#include "trainer/rl/policy_pass.h"
#include "trainer/rl/ppo_update.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// `groups` prompts of P tokens, each repeated `samples` times, with full responses of R tokens.
anchor::UpdateInputs grouped_inputs(int64_t vocab, int64_t groups, int64_t samples, int64_t P, int64_t R) {
  torch::manual_seed(1);
  const int64_t N = groups * samples;
  anchor::UpdateInputs in;
  in.batch.prompt_ids = torch::randint(3, vocab, {groups, P}, torch::kLong).repeat_interleave(samples, 0);
  in.batch.prompt_mask = torch::ones({N, P}, torch::kBool);
  in.batch.response_ids = torch::randint(3, vocab, {N, R}, torch::kLong);
  in.batch.response_mask = torch::ones({N, R}, torch::kBool);
  in.token_advantages = torch::randn({N, 1}).expand({N, R}).contiguous();
  return in;
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> args = {{"--model", ""},   {"--pairs", "16x128,32x128,64x128,128x128,256x64,512x64"},
                                             {"--groups", "2"},  {"--samples", "8"},
                                             {"--micro", "16"},  {"--repeat", "2"},
                                             {"--threads", "2"}, {"--profile", ""}};
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!args.count(argv[i])) {
      std::cerr << "anchor-bench-shared-prompts: unknown option " << argv[i] << "\n";
      return 2;
    }
    args[argv[i]] = argv[i + 1];
  }
  if (args["--model"].empty()) {
    std::cerr << "anchor-bench-shared-prompts: --model DIR is required\n";
    return 2;
  }
  // As anchor-rl does (trainer/cli/main.cpp): keep freed blocks in the heap, no page faults.
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024);
  at::set_num_threads(std::stoi(args["--threads"]));
  anchor::LlamaModel model = anchor::load_model(args["--model"], torch::TensorOptions().dtype(torch::kFloat));
  model.set_requires_grad(true);
  const int64_t groups = std::stoll(args["--groups"]), samples = std::stoll(args["--samples"]);
  const int64_t micro = std::stoll(args["--micro"]), repeat = std::stoll(args["--repeat"]);

  const anchor::PolicyLoss& loss = anchor::policy_losses().get("ppo_clip");
  auto update_options = [&](bool share) {
    anchor::UpdateOptions o;
    o.policy_loss = &loss;
    o.micro_batch_size = micro;
    o.share_prompts = share;
    return o;
  };
  std::printf("model %s, %lld groups x %lld samples, micro-batch %lld, %d threads, best of %lld\n\n",
              args["--model"].c_str(), static_cast<long long>(groups), static_cast<long long>(samples),
              static_cast<long long>(micro), at::get_num_threads(), static_cast<long long>(repeat));
  std::printf("| prompt / response tokens | prompt share | positions shared / unshared | no-grad pass s (unshared -> shared) | saved | training fwd+bwd s (unshared -> shared) | saved |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  std::stringstream pairs(args["--pairs"]);
  std::string pair;
  while (std::getline(pairs, pair, ',')) {
    const size_t x = pair.find('x');
    const int64_t P = std::stoll(pair.substr(0, x)), R = std::stoll(pair.substr(x + 1));
    anchor::UpdateInputs in = grouped_inputs(model.config().vocab_size, groups, samples, P, R);
    const int64_t N = groups * samples;
    const at::Tensor rows = torch::arange(N, torch::kLong);
    if (!args["--profile"].empty()) {  // chrome traces of one pass of each kind and layout
      for (int share = 0; share < 2; ++share) {
        const std::string tag = share == 1 ? "shared" : "unshared";
        {
          torch::autograd::profiler::RecordProfile guard(args["--profile"] + "/nograd_" + tag + ".trace");
          anchor::policy_pass(model, in.batch, 1.0, micro, false, nullptr, {}, share == 1);
        }
        torch::autograd::profiler::RecordProfile guard(args["--profile"] + "/train_" + tag + ".trace");
        anchor::accumulate_policy_gradients(model, in, rows, update_options(share == 1));
      }
      return 0;
    }
    double no_grad[2] = {1e30, 1e30}, train[2] = {1e30, 1e30};
    int64_t positions[2] = {0, 0};
    for (int64_t r = 0; r < repeat; ++r) {
      for (int share = 0; share < 2; ++share) {
        auto t0 = Clock::now();
        anchor::policy_pass(model, in.batch, 1.0, micro, false, nullptr, {}, share == 1);
        no_grad[share] = std::min(no_grad[share], seconds_since(t0));
        for (auto p : model.parameters()) p.mutable_grad() = at::Tensor();
        t0 = Clock::now();
        const anchor::UpdateStats st = anchor::accumulate_policy_gradients(model, in, rows, update_options(share == 1));
        train[share] = std::min(train[share], seconds_since(t0));
        positions[share] = st.positions;
      }
    }
    std::printf("| %lld / %lld | %.0f%% | %lld / %lld | %.2f -> %.2f | %.0f%% | %.2f -> %.2f | %.0f%% |\n",
                static_cast<long long>(P), static_cast<long long>(R), 100.0 * P / (P + R),
                static_cast<long long>(positions[1]), static_cast<long long>(positions[0]), no_grad[0], no_grad[1],
                100.0 * (1 - no_grad[1] / no_grad[0]), train[0], train[1], 100.0 * (1 - train[1] / train[0]));
    std::fflush(stdout);
  }
  return 0;
}
