#include "rewards/external_reward.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <sstream>
#include <thread>

#include "rewards/http_reward_client.h"
#include "rewards/reward_parameters.h"
#include "rewards/reward_process.h"
#include "rewards/reward_protocol.h"
#include "trainer/common/error.h"
#include "trainer/common/file_util.h"
#include "trainer/common/log.h"

namespace anchor::rewards {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

struct ExternalOptions {
  std::string command, url, label = "external";
  double timeout_seconds = 60;
  int64_t retries = 3;
  std::vector<std::string> sub_scores;
  bool correctness = false;
};

ExternalOptions read_options(const json& p, const std::string& key) {
  AR_CHECK(p.is_object(), key, ": the external reward needs parameters (command or url)");
  reject_unknown_parameters(p, key, {"command", "url", "timeout_seconds", "retries", "sub_scores", "correctness", "label"});
  ExternalOptions o;
  auto string_of = [&](const char* name, std::string& out) {
    if (!p.contains(name)) return;
    AR_CHECK(p.at(name).is_string() && !p.at(name).get<std::string>().empty(), key, ".", name,
             ": expected a non-empty string");
    out = p.at(name).get<std::string>();
  };
  string_of("command", o.command);
  string_of("url", o.url);
  string_of("label", o.label);
  AR_CHECK(o.command.empty() != o.url.empty(), key,
           ": give exactly one of command (a program that reads request lines on stdin) or url (an HTTP endpoint)");
  if (!o.url.empty())
    AR_CHECK(o.url.rfind("http://", 0) == 0 || o.url.rfind("https://", 0) == 0, key, ".url: expected http:// or https://, got '",
             o.url, "'");
  AR_CHECK(o.label.find('/') == std::string::npos, key, ".label: must not contain '/', got '", o.label, "'");
  if (p.contains("timeout_seconds")) {
    const json& t = p.at("timeout_seconds");
    AR_CHECK(t.is_number() && t.get<double>() > 0 && std::isfinite(t.get<double>()), key,
             ".timeout_seconds: expected a positive number of seconds, got ", t.dump());
    o.timeout_seconds = t.get<double>();
  }
  if (p.contains("retries")) {
    const json& r = p.at("retries");
    AR_CHECK(r.is_number_integer() && r.get<int64_t>() >= 0 && r.get<int64_t>() <= 100, key,
             ".retries: expected an integer in [0, 100], got ", r.dump());
    o.retries = r.get<int64_t>();
  }
  if (p.contains("correctness")) {
    AR_CHECK(p.at("correctness").is_boolean(), key, ".correctness: expected true or false, got ", p.at("correctness").dump());
    o.correctness = p.at("correctness").get<bool>();
  }
  if (p.contains("sub_scores")) {
    const json& s = p.at("sub_scores");
    AR_CHECK(s.is_array(), key, ".sub_scores: expected a list of names, got ", s.dump());
    for (const json& n : s) {
      AR_CHECK(n.is_string() && !n.get<std::string>().empty() && n.get<std::string>().find('/') == std::string::npos,
               key, ".sub_scores: every entry must be a non-empty name without '/', got ", n.dump());
      for (const std::string& seen : o.sub_scores)
        AR_CHECK(seen != n.get<std::string>(), key, ".sub_scores: '", seen, "' is listed twice");
      o.sub_scores.push_back(n.get<std::string>());
    }
  }
  return o;
}

// The command's words that name files (its script, data it reads): hashed into run.json.
json command_files(const std::string& command) {
  json files = json::object();
  std::istringstream words(command);
  for (std::string w; words >> w;) {
    std::error_code ec;
    if (fs::is_regular_file(w, ec)) files[w] = xxh3_hex(file_xxh3(w));
  }
  return files;
}

class ExternalReward : public RewardComponent {
 public:
  ExternalReward(const json& params, const std::string& key) : key_(key), o_(read_options(params, key)) {
    if (!o_.command.empty()) {
      origin_ = str_cat(key_, " (command '", o_.command, "')");
      process_ = std::make_unique<RewardProcess>(o_.command, origin_);
      process_->start();  // its start-up overlaps the model load
    } else {
      origin_ = str_cat(key_, " (url ", o_.url, ")");
      http_ = std::make_unique<HttpRewardClient>(o_.url, origin_);
    }
  }

  double score(const RewardInput& input) const override { return score_batch({input}).values.at(0); }
  bool measures_correctness() const override { return o_.correctness; }
  std::vector<std::string> sub_score_names() const override { return o_.sub_scores; }
  std::string label() const override { return o_.label; }

  ComponentScores score_batch(const std::vector<RewardInput>& inputs) const override {
    ComponentScores out;
    if (inputs.empty()) return out;
    const std::string request = reward_request_line(inputs);
    const std::string answer = process_ ? exchange_with_process(request) : exchange_over_http(request);
    RewardAnswer a = parse_reward_answer(answer, inputs.size(), o_.sub_scores, origin_);
    // A sample of what the program says about its scores: the batch's first note, in the log.
    for (size_t r = 0; r < a.notes.size(); ++r)
      if (!a.notes[r].empty()) {
        log::info(str_cat(o_.label, " note on row ", r, " of ", a.notes.size(), " (score ", a.scores[r], "): ",
                          a.notes[r].substr(0, 300)));
        break;
      }
    out.values = std::move(a.scores);
    out.sub_scores = std::move(a.sub_scores);
    out.notes = std::move(a.notes);
    return out;
  }

 private:
  std::string exchange_with_process(const std::string& request) const {
    for (int64_t attempt = 0;; ++attempt) {
      RewardProcess::Exchange e = process_->exchange(request, o_.timeout_seconds);
      if (e.outcome == RewardProcess::Outcome::answered) {
        ever_answered_ = true;
        return std::move(e.answer);
      }
      // A program that never answered a batch is broken, not unlucky: no restarts.
      AR_CHECK(ever_answered_ || e.outcome == RewardProcess::Outcome::timed_out, origin_,
               ": the reward program could not start or failed on its first batch: ", e.why);
      AR_CHECK(attempt < o_.retries, origin_, ": ", e.why, "; stopping after ", o_.retries,
               " restarts in a row (retries); the run's last checkpoint is intact");
      log::warn(str_cat(origin_, ": ", e.why, "; restarting it and sending the batch again (restart ", attempt + 1,
                        " of at most ", o_.retries, ")"));
    }
  }

  std::string exchange_over_http(const std::string& request) const {
    for (int64_t attempt = 0;; ++attempt) {
      HttpRewardClient::Response r = http_->post(request, o_.timeout_seconds);
      if (r.delivered) {
        if (r.status == 200) return std::move(r.body);
        const std::string first_line = r.body.substr(0, std::min(r.body.find('\n'), size_t{300}));
        AR_FAIL(origin_, ": HTTP status ", r.status, (first_line.empty() ? "" : ": " + first_line));
      }
      const std::string why = r.timed_out ? str_cat("no answer within ", o_.timeout_seconds, " s (timeout_seconds): ", r.why)
                                          : "no HTTP answer: " + r.why;
      AR_CHECK(attempt < o_.retries, origin_, ": ", why, "; stopping after ", o_.retries,
               " retries in a row; the run's last checkpoint is intact");
      const int pause = std::min<int>(8, 1 << attempt);
      log::warn(str_cat(origin_, ": ", why, "; trying again in ", pause, " s (retry ", attempt + 1, " of at most ",
                        o_.retries, ")"));
      std::this_thread::sleep_for(std::chrono::seconds(pause));
    }
  }

  std::string key_, origin_;
  ExternalOptions o_;
  // The connection is an implementation detail: scoring stays logically const.
  std::unique_ptr<RewardProcess> process_;
  std::unique_ptr<HttpRewardClient> http_;
  mutable bool ever_answered_ = false;
};

}  // namespace

std::unique_ptr<RewardComponent> make_external_reward(const json& params, const std::string& key) {
  return std::make_unique<ExternalReward>(params, key);
}

json external_reward_records(const std::vector<CompositeReward::Entry>& entries) {
  json out = json::array();
  for (size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].name != "external" || !entries[i].params.is_object()) continue;
    const json& p = entries[i].params;
    json record = {{"key", "reward.components[" + std::to_string(i) + "]"}};
    if (p.contains("command") && p.at("command").is_string()) {
      record["command"] = p.at("command");
      record["files"] = command_files(p.at("command").get<std::string>());
    }
    if (p.contains("url")) record["url"] = p.at("url");
    out.push_back(std::move(record));
  }
  return out;
}

std::vector<std::string> external_reward_changes(const json& before, const json& now) {
  std::vector<std::string> changes;
  if (!before.is_array() || !now.is_array()) return changes;
  for (const json& b : before)
    for (const json& n : now) {
      if (!b.is_object() || b.value("key", "") != n.value("key", "")) continue;
      const std::string key = n.value("key", "");
      for (const char* field : {"command", "url"})
        if (b.value(field, json()) != n.value(field, json()))
          changes.push_back(str_cat(key, ": the ", field, " changed from ", b.value(field, json()).dump(), " to ",
                                    n.value(field, json()).dump()));
      const json none = json::object();
      const json& bf = b.contains("files") && b.at("files").is_object() ? b.at("files") : none;
      const json& nf = n.contains("files") && n.at("files").is_object() ? n.at("files") : none;
      for (const auto& [file, hash] : nf.items())
        if (bf.contains(file) && bf.at(file) != hash)
          changes.push_back(str_cat(key, ": ", file, " changed since the run was started (xxh3 ",
                                    bf.at(file).get<std::string>(), " -> ", hash.get<std::string>(), ")"));
    }
  return changes;
}

}  // namespace anchor::rewards
