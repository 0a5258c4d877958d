// The external reward component (rewards/external_reward.h) against real programs: the
// helper module serving a plain function, and one misbehaving program per fault
// (tests/python/reward_programs.py), over a subprocess and over loopback HTTP.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <regex>
#include <thread>

#include "rewards/external_reward.h"
#include "rewards/http_reward_client.h"
#include "rewards/reward_function.h"
#include "rewards/reward_protocol.h"
#include "tests/unit/test_util.h"

namespace anchor::rewards {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using nlohmann::json;

std::string programs() { return std::string(ANCHOR_SOURCE_DIR_FOR_TESTS) + "tests/python/reward_programs.py"; }

json external(const std::string& mode, json extra = json::object()) {
  extra["command"] = "python3 " + programs() + " " + mode;
  return extra;
}

// Three rows with different completions; example ids 0, 1, 2.
struct Rows {
  std::string prompt = "Solve it.";
  std::vector<std::string> completions = {"a", "bb", "ccc\xff"};  // the last ends inside a UTF-8 character
  std::vector<json> examples = {{{"id", 0}}, {{"id", 1}}, {{"id", 2}}};
  std::vector<RewardInput> inputs() const {
    std::vector<RewardInput> out;
    for (size_t i = 0; i < 3; ++i)
      out.push_back({prompt, completions[i], examples[i], static_cast<int64_t>(i + 1), 8, i == 2});
    return out;
  }
};

TEST(RewardProtocol, RequestCarriesEveryField) {
  const Rows rows;
  const json request = json::parse(reward_request_line(rows.inputs()));
  EXPECT_EQ(request["protocol"], 1);
  ASSERT_EQ(request["rows"].size(), 3u);
  const json& r = request["rows"][2];
  EXPECT_EQ(r["prompt"], "Solve it.");
  EXPECT_EQ(r["completion"], "ccc\xEF\xBF\xBD");  // the stray byte arrives as U+FFFD
  EXPECT_EQ(r["completion_tokens"], 3);
  EXPECT_EQ(r["max_new_tokens"], 8);
  EXPECT_EQ(r["finish_reason"], "length");
  EXPECT_EQ(request["rows"][0]["finish_reason"], "stop");
  EXPECT_EQ(r["example"]["id"], 2);
}

TEST(RewardProtocol, AnswerChecks) {
  const RewardAnswer a = parse_reward_answer(
      R"({"scores": [1, 0.5, "NaN"], "sub_scores": {"f": [0, 1, "-Infinity"]}, "notes": ["x", null, "z"]})", 3, {"f"},
      "origin");
  EXPECT_EQ(a.scores[0], 1.0);
  EXPECT_EQ(a.scores[1], 0.5);
  EXPECT_TRUE(std::isnan(a.scores[2]));
  EXPECT_EQ(a.sub_scores.at(0).at(2), -INFINITY);
  EXPECT_EQ(a.notes, (std::vector<std::string>{"x", "", "z"}));
  auto err = [](const std::string& line, std::vector<std::string> subs = {}) {
    return test::error_of([&] { parse_reward_answer(line, 2, subs, "reward.components[0]"); });
  };
  EXPECT_THAT(err("nope"), AllOf(HasSubstr("reward.components[0]"), HasSubstr("not JSON")));
  EXPECT_THAT(err("[1, 2]"), HasSubstr("must be a JSON object"));
  EXPECT_THAT(err(R"({"scores": [1]})"), HasSubstr("expected 2 numbers (one per row), got 1"));
  EXPECT_THAT(err(R"({"scores": [1, "x"]})"), HasSubstr("scores[1] (row 1): expected a number"));
  EXPECT_THAT(err(R"({"scores": [1, true]})"), HasSubstr("scores[1] (row 1): expected a number"));
  EXPECT_THAT(err(R"({"score": [1, 2]})"), HasSubstr("unknown field 'score'"));
  EXPECT_THAT(err(R"({"error": "verifier crashed"})"), HasSubstr("reported an error: verifier crashed"));
  EXPECT_THAT(err(R"({"scores": [1, 2], "sub_scores": {"g": [1, 2]}})"), HasSubstr("sub_scores.g: not declared"));
  EXPECT_THAT(err(R"({"scores": [1, 2]})", {"f"}), HasSubstr("sub_scores.f: missing"));
  EXPECT_THAT(err(R"({"scores": [1, 2], "notes": [1, null]})"), HasSubstr("notes[0] (row 0)"));
  EXPECT_THAT(err(R"({"scores": [1, 2], "notes": ["a"]})"), HasSubstr("notes: expected a list of 2"));
}

TEST(ExternalReward, HelperServesAPlainFunction) {
  const CompositeReward reward(
      {{"external", 1.0, external("length", {{"sub_scores", {"tokens"}}, {"label", "len"}})}, {"format", 0.5, {}}});
  EXPECT_EQ(reward.columns(), (std::vector<std::string>{"len", "len/tokens", "format"}));
  const Rows rows;
  for (int repeat = 0; repeat < 2; ++repeat) {  // the same process answers batch after batch
    const auto b = reward.score_batch(rows.inputs());
    ASSERT_EQ(b.size(), 3u);
    EXPECT_EQ(b[1].total, 2.0);
    EXPECT_EQ(b[2].components[0].value, 4.0);  // "ccc" + U+FFFD, as Python counts characters
    EXPECT_EQ(b[2].components[1].value, 3.0);  // completion_tokens
    EXPECT_EQ(b[2].components[1].weight, 0.0);
    EXPECT_EQ(b[2].note, "length 2");
    EXPECT_FALSE(b[0].correct);  // correctness is off by default
  }
  EXPECT_EQ(reward.score(rows.inputs()[0]).total, 1.0);
}

TEST(ExternalReward, RunRecordHashesTheProgramAndSeesChanges) {
  const auto dir = test::scratch_dir("external_reward_record");
  const std::string script = (dir / "my_reward.py").string();
  std::ofstream(script) << "print('v1')\n";
  const std::vector<CompositeReward::Entry> entries = {
      {"countdown", 1.0, {}}, {"external", 1.0, {{"command", "python3 " + script + " --fast"}}},
      {"external", 1.0, {{"url", "http://127.0.0.1:1/score"}, {"label", "judge"}}}};
  const json before = external_reward_records(entries);
  ASSERT_EQ(before.size(), 2u);
  EXPECT_EQ(before[0]["key"], "reward.components[1]");
  EXPECT_EQ(before[0]["files"].size(), 1u);  // the script; python3 and --fast are no files here
  EXPECT_EQ(before[1]["url"], "http://127.0.0.1:1/score");
  EXPECT_TRUE(external_reward_changes(before, external_reward_records(entries)).empty());
  std::ofstream(script) << "print('v2')\n";
  const auto changes = external_reward_changes(before, external_reward_records(entries));
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_THAT(changes[0], AllOf(HasSubstr("reward.components[1]: "), HasSubstr("my_reward.py changed since the run was started")));
}

TEST(ExternalReward, CorrectnessAndNonFiniteScores) {
  const CompositeReward reward({{"external", 1.0, external("nan", {{"correctness", true}})}});
  const auto b = reward.score_batch(Rows().inputs());
  EXPECT_TRUE(std::isnan(b[0].total));  // passed on to the trainer's non-finite guard
  EXPECT_TRUE(b[1].correct);
}

TEST(ExternalReward, PrintingInsideTheFunctionKeepsAnswersClean) {
  const CompositeReward reward({{"external", 1.0, external("print")}});
  EXPECT_EQ(reward.score_batch(Rows().inputs())[0].total, 2.0);
}

TEST(ExternalReward, ExitMidRunRestartsAndResends) {
  const CompositeReward reward({{"external", 1.0, external("exit_after 1", {{"retries", 2}})}});
  const Rows rows;
  for (int batch = 0; batch < 4; ++batch)  // every second batch needs a restart
    EXPECT_EQ(reward.score_batch(rows.inputs())[1].total, 2.0) << batch;
}

TEST(ExternalReward, RestartsRunOutWithTheReason) {
  const auto state = test::scratch_dir("external_reward_restarts") / "started";
  const CompositeReward reward({{"external", 1.0, external("dies_on_restart " + state.string(), {{"retries", 2}})}});
  const Rows rows;
  EXPECT_EQ(reward.score_batch(rows.inputs())[0].total, 1.0);
  EXPECT_THAT(test::error_of([&] { reward.score_batch(rows.inputs()); }),
              AllOf(HasSubstr("exited with code 4"), HasSubstr("giving up on purpose"), HasSubstr("after 2 restarts")));
}

TEST(ExternalReward, ProgramThatCannotStartIsNamed) {
  const Rows rows;
  const CompositeReward missing({{"external", 1.0, {{"command", "no-such-reward-program --flag"}}}});
  EXPECT_THAT(test::error_of([&] { missing.score_batch(rows.inputs()); }),
              AllOf(HasSubstr("reward.components[0] (command 'no-such-reward-program --flag')"),
                    HasSubstr("could not start"), HasSubstr("code 127"), HasSubstr("not found")));
  const CompositeReward failing({{"external", 1.0, external("stderr_exit")}});
  EXPECT_THAT(test::error_of([&] { failing.score_batch(rows.inputs()); }),
              AllOf(HasSubstr("exited with code 5"), HasSubstr("cannot load the verifier model")));
}

TEST(ExternalReward, TimeoutKillsAndGivesUp) {
  const CompositeReward reward({{"external", 1.0, external("sleep 30", {{"timeout_seconds", 0.5}, {"retries", 1}})}});
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_THAT(test::error_of([&] { reward.score_batch(Rows().inputs()); }),
              AllOf(HasSubstr("no answer within 0.5 s"), HasSubstr("after 1 restarts")));
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 10.0);  // never a hang
}

TEST(ExternalReward, MalformedAnswersAreNamed) {
  const Rows rows;
  EXPECT_THAT(test::error_of([&] { CompositeReward({{"external", 1.0, external("garbage")}}).score_batch(rows.inputs()); }),
              AllOf(HasSubstr("not JSON"), HasSubstr("'this is not json'")));
  EXPECT_THAT(test::error_of([&] { CompositeReward({{"external", 1.0, external("short")}}).score_batch(rows.inputs()); }),
              HasSubstr("scores: expected 3 numbers (one per row), got 2"));
  EXPECT_THAT(test::error_of([&] { CompositeReward({{"external", 1.0, external("raise")}}).score_batch(rows.inputs()); }),
              HasSubstr("reported an error: ValueError: no verifier for this row"));
  const CompositeReward two({{"external", 1.0, external("two_lines")}});
  two.score_batch(rows.inputs());
  EXPECT_THAT(test::error_of([&] { two.score_batch(rows.inputs()); }), HasSubstr("more than one line for one batch"));
}

TEST(ExternalReward, BadParametersNameTheKey) {
  auto err = [](json params) { return test::error_of([&] { CompositeReward({{"external", 1.0, params}}); }); };
  EXPECT_THAT(err(json::object()), HasSubstr("reward.components[0]: give exactly one of command"));
  EXPECT_THAT(err({{"command", "x"}, {"url", "http://a"}}), HasSubstr("exactly one of command"));
  EXPECT_THAT(err({{"url", "ftp://a"}}), HasSubstr("reward.components[0].url: expected http://"));
  EXPECT_THAT(err({{"url", "http://a"}, {"timeout_seconds", 0}}), HasSubstr("timeout_seconds: expected a positive"));
  EXPECT_THAT(err({{"url", "http://a"}, {"retries", -1}}), HasSubstr("retries: expected an integer"));
  EXPECT_THAT(err({{"url", "http://a"}, {"sub_scores", {"a", "a"}}}), HasSubstr("'a' is listed twice"));
  EXPECT_THAT(err({{"url", "http://a"}, {"commnd", "x"}}), HasSubstr("reward.components[0].commnd: unknown parameter"));
  EXPECT_THAT(test::error_of([] {
                CompositeReward({{"external", 1.0, {{"url", "http://a"}, {"label", "format"}}}, {"format", 1.0, {}}});
              }),
              HasSubstr("reward.components[1]: its scores would be logged as 'format'"));
}

// A reward program serving HTTP on a free loopback port, for the length of a test.
class HttpRewardServer {
 public:
  explicit HttpRewardServer(const std::string& mode) {
    // One directory per test: ctest runs the HTTP tests in parallel, and a shared server.log
    // let one test read (and then lose) the other's server.
    std::string name = std::string("external_reward_http_") +
                       ::testing::UnitTest::GetInstance()->current_test_info()->name() + "_" + mode;
    for (char& c : name)
      if (c == ' ') c = '_';
    log_ = test::scratch_dir(name).string() + "/server.log";
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setpgid(0, 0);
      const std::string command = "exec python3 " + programs() + " " + mode + " --http 0 2>" + log_;
      ::execl("/bin/sh", "sh", "-c", command.c_str(), nullptr);
      ::_exit(127);
    }
    const std::regex served("serving on (http://127\\.0\\.0\\.1:[0-9]+/score)");
    for (int i = 0; i < 200 && url_.empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      std::ifstream in(log_);
      const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (std::smatch m; std::regex_search(text, m, served)) url_ = m[1];
    }
  }
  ~HttpRewardServer() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  const std::string& url() const { return url_; }

 private:
  pid_t pid_ = -1;
  std::string log_, url_;
};

TEST(ExternalReward, HttpServesTheSameAnswers) {
  HttpRewardServer server("length");
  ASSERT_FALSE(server.url().empty()) << "the test server did not start";
  const CompositeReward reward({{"external", 1.0, {{"url", server.url()}, {"sub_scores", {"tokens"}}}}});
  for (int repeat = 0; repeat < 3; ++repeat) {  // one kept-alive connection
    const auto b = reward.score_batch(Rows().inputs());
    EXPECT_EQ(b[1].total, 2.0);
    EXPECT_EQ(b[2].components[1].value, 3.0);
  }
}

TEST(ExternalReward, HttpKeepsOneConnection) {
  HttpRewardServer server("length");
  ASSERT_FALSE(server.url().empty()) << "the test server did not start";
  HttpRewardClient client(server.url(), "test");
  const std::string request = reward_request_line(Rows().inputs());
  for (int batch = 0; batch < 3; ++batch) {
    const HttpRewardClient::Response r = client.post(request, 10.0);
    ASSERT_TRUE(r.delivered) << r.why;
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.new_connections, batch == 0 ? 1 : 0) << "batch " << batch;  // later batches reuse the first
  }
}

TEST(ExternalReward, HttpFaultsAreNamed) {
  const Rows rows;
  {
    HttpRewardServer server("raise");
    ASSERT_FALSE(server.url().empty());
    const CompositeReward reward({{"external", 1.0, {{"url", server.url()}}}});
    EXPECT_THAT(test::error_of([&] { reward.score_batch(rows.inputs()); }),
                AllOf(HasSubstr("HTTP status 500"), HasSubstr("ValueError: no verifier for this row")));
  }
  {
    HttpRewardServer server("sleep 30");
    ASSERT_FALSE(server.url().empty());
    const CompositeReward reward({{"external", 1.0, {{"url", server.url()}, {"timeout_seconds", 0.5}, {"retries", 0}}}});
    EXPECT_THAT(test::error_of([&] { reward.score_batch(rows.inputs()); }),
                AllOf(HasSubstr("no answer within 0.5 s"), HasSubstr("after 0 retries")));
  }
  // Nothing listens on port 9 (discard) here: connection refused, retried once, then named.
  const CompositeReward refused({{"external", 1.0, {{"url", "http://127.0.0.1:9/score"}, {"retries", 1}}}});
  EXPECT_THAT(test::error_of([&] { refused.score_batch(rows.inputs()); }),
              AllOf(HasSubstr("(url http://127.0.0.1:9/score)"), HasSubstr("no HTTP answer"), HasSubstr("after 1 retries")));
}

}  // namespace
}  // namespace anchor::rewards
