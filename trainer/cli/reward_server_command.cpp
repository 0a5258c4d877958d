// `anchor-rl reward-server --reward NAME...`: the built-in reward components as an external
// reward program (protocol 1, rewards/README.md): reads request lines on stdin, writes one
// answer line per request on stdout, until stdin closes. Lets a program in another language
// reuse the built-in verifiers (rewards/examples/math_answer_reward.py does), and a run point
// `{name: external, command: "anchor-rl reward-server --reward countdown"}` at them.
#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "rewards/reward_function.h"
#include "rewards/reward_protocol.h"
#include "trainer/cli/commands.h"
#include "trainer/common/error.h"

namespace anchor::cli {
namespace {

using nlohmann::json;

struct RewardServerOptions {
  std::vector<std::string> rewards;
  bool sub_scores = false;
};

// The answer to one request line; a bad request gets an error answer, not an exit.
json answer_to(const std::string& line, const rewards::CompositeReward& reward, bool sub_scores) {
  try {
    const json request = json::parse(line, nullptr, false);
    AR_CHECK(!request.is_discarded() && request.is_object(), "the request is not a JSON object");
    AR_CHECK(request.value("protocol", json()).is_number_integer() &&
                 request.at("protocol").get<int>() == rewards::kRewardProtocolVersion,
             "the request's protocol must be ", rewards::kRewardProtocolVersion);
    AR_CHECK(request.contains("rows") && request.at("rows").is_array(), "the request has no 'rows' list");
    const json& rows = request.at("rows");
    std::vector<rewards::RewardInput> inputs;  // refers to the strings inside `request`
    for (size_t i = 0; i < rows.size(); ++i) {
      const json& r = rows[i];
      AR_CHECK(r.is_object() && r.value("prompt", json()).is_string() && r.value("completion", json()).is_string() &&
                   r.value("example", json()).is_object(),
               "rows[", i, "]: needs prompt and completion (strings) and example (an object)");
      const std::string problem = reward.row_problem(r.at("example"));
      AR_CHECK(problem.empty(), "rows[", i, "]: ", problem);
      inputs.push_back({r.at("prompt").get_ref<const std::string&>(), r.at("completion").get_ref<const std::string&>(),
                        r.at("example"), r.value("completion_tokens", int64_t{0}), r.value("max_new_tokens", int64_t{0}),
                        r.value("finish_reason", "stop") == "length"});
    }
    json scores = json::array(), subs = json::object();
    for (const rewards::RewardBreakdown& b : reward.score_batch(inputs)) {
      scores.push_back(b.total);
      if (sub_scores)
        for (const rewards::ComponentScore& c : b.components) subs[c.name].push_back(c.value);
    }
    json answer = {{"scores", scores}};
    if (sub_scores && !subs.empty()) answer["sub_scores"] = subs;
    return answer;
  } catch (const std::exception& e) {
    return {{"error", e.what()}};
  }
}

int run_reward_server(const RewardServerOptions& o) {
  const rewards::CompositeReward reward = rewards::CompositeReward::from_names(o.rewards);
  std::ios::sync_with_stdio(false);
  for (std::string line; std::getline(std::cin, line);) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::cout << answer_to(line, reward, o.sub_scores).dump(-1, ' ', false, json::error_handler_t::replace) << '\n'
              << std::flush;
  }
  return 0;
}

}  // namespace

Action register_reward_server(CLI::App& app) {
  auto o = std::make_shared<RewardServerOptions>();
  CLI::App* sub = app.add_subcommand(
      "reward-server", "Serve built-in reward components over the external reward protocol (stdin/stdout lines)");
  sub->add_option("--reward", o->rewards, "Reward component (repeatable; summed with weight 1)")->required();
  sub->add_flag("--sub-scores", o->sub_scores, "Also answer each component's score as a sub-score named after it");
  return [sub, o]() -> int { return sub->parsed() ? run_reward_server(*o) : -1; };
}

}  // namespace anchor::cli
