// Subcommands of the `anchor-rl` executable. Each registers its options on the CLI11 app
// and returns the action to run once parsing succeeded.
#pragma once

#include <functional>

namespace CLI {
class App;
}

namespace anchor::cli {

using Action = std::function<int()>;

Action register_generate(CLI::App& app);
Action register_train(CLI::App& app);
Action register_eval(CLI::App& app);
Action register_sft(CLI::App& app);
Action register_sft_prepare(CLI::App& app);
Action register_credit(CLI::App& app);
Action register_chat(CLI::App& app);
Action register_credit_stats(CLI::App& app);
Action register_checkpoint(CLI::App& app);
Action register_config(CLI::App& app);
Action register_plan(CLI::App& app);
Action register_ablate(CLI::App& app);
Action register_reward_server(CLI::App& app);
Action register_export(CLI::App& app);

}  // namespace anchor::cli
