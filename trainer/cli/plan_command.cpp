// `anchor-rl plan CONFIG [--set k=v]... [--sft] [--world-size K] [--device-memory 80GiB]
//  [--prompt-tokens N] [--json]`: the memory plan of a run per rank (trainer/run/memory_plan.h),
// from the model's config.json alone; exit status 1 when it does not fit, with the settings
// that would make it fit.
#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "trainer/cli/commands.h"
#include "trainer/common/error.h"
#include "trainer/config/train_config.h"
#include "trainer/run/run_memory_plan.h"

namespace anchor::cli {
namespace {

struct PlanOptions {
  std::string path;
  std::vector<std::string> overrides;
  bool sft = false;
  int64_t world_size = 1;
  std::string device_memory;
  int64_t prompt_tokens = 0;
  bool json = false;
};

nlohmann::json items_json(const std::vector<MemoryItem>& items) {
  nlohmann::json out = nlohmann::json::array();
  for (const MemoryItem& i : items) out.push_back({{"name", i.name}, {"bytes", i.bytes}, {"note", i.note}});
  return out;
}

int run_plan(const PlanOptions& o) {
  const ConfigUse use = o.sft ? ConfigUse::sft : ConfigUse::rl;
  const TrainConfig cfg = load_train_config(o.path, o.overrides, use);
  PlanRequest request;
  request.world_size = o.world_size;
  request.ranks_per_node = o.world_size;  // CPU ranks of one node share its memory
  request.device_memory = o.device_memory;
  request.prompt_tokens = o.prompt_tokens;
  const MemoryPlanInputs inputs = run_memory_plan_inputs(cfg, use, cfg.model.path, request);
  const MemoryPlan plan = plan_memory(inputs);
  const std::string refusal = memory_plan_refusal(inputs, plan);
  if (o.json) {
    nlohmann::json phases = nlohmann::json::array();
    for (const MemoryPhase& p : plan.phases)
      phases.push_back({{"name", p.name}, {"bytes", p.total()}, {"items", items_json(p.items)}});
    std::cout << nlohmann::json{{"model", plan.model_summary}, {"parameters", plan.parameters},
                                {"settings", plan.settings}, {"world_size", o.world_size},
                                {"resident", items_json(plan.resident)}, {"resident_bytes", plan.resident_total()},
                                {"phases", phases}, {"peak_phase", plan.peak_phase().name}, {"peak_bytes", plan.peak()},
                                {"device_bytes", plan.device_bytes}, {"fits", plan.fits()},
                                {"rollout_chunk_rows", plan.rollout_chunk_rows}, {"eval_chunk_rows", plan.eval_chunk_rows},
                                {"refusal", refusal}}
                     .dump(2)
              << "\n";
  } else {
    std::cout << format_memory_plan(plan);
    if (!refusal.empty()) std::cout << refusal << "\n";
  }
  return plan.fits() ? 0 : 1;
}

}  // namespace

Action register_plan(CLI::App& app) {
  auto o = std::make_shared<PlanOptions>();
  CLI::App* sub = app.add_subcommand("plan", "Memory plan of a run per rank, from the model's config.json alone "
                                             "(exit status 1 when it does not fit)");
  sub->add_option("config", o->path, "YAML run config")->required()->check(CLI::ExistingFile);
  sub->add_option("--set", o->overrides, "Override a config key: section.key=value (repeatable)");
  sub->add_flag("--sft", o->sft, "Plan `anchor-rl sft` (default: `anchor-rl train`)");
  sub->add_option("--world-size", o->world_size, "Data-parallel ranks (mpirun -np)")->check(CLI::PositiveNumber);
  sub->add_option("--device-memory", o->device_memory,
                  "Memory of one rank's device, e.g. 80GiB (default: this machine's: CPU MemAvailable shared by the "
                  "ranks, or the GPU's total)");
  sub->add_option("--prompt-tokens", o->prompt_tokens,
                  "Longest prompt in tokens (RL) or longest example (SFT) (default: measured from the data with the "
                  "model's tokenizer, else data.max_prompt_tokens)")
      ->check(CLI::PositiveNumber);
  sub->add_flag("--json", o->json, "The plan as JSON");
  return [sub, o]() -> int { return sub->parsed() ? run_plan(*o) : -1; };
}

}  // namespace anchor::cli
