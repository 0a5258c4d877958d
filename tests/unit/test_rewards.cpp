#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <random>

#include "rewards/answer_extraction.h"
#include "rewards/countdown.h"
#include "rewards/reward_function.h"
#include "tests/unit/test_util.h"

namespace anchor::rewards {
namespace {

using ::testing::HasSubstr;

TEST(AnswerExtraction, HashesBoxedAndLastNumber) {
  EXPECT_EQ(extract_answer("so 3 + 4 = 7\n#### 7\nthanks 9").value(), "7");
  EXPECT_EQ(extract_answer("we get \\boxed{\\frac{1}{2}} and \\boxed{42}.").value(), "42");
  EXPECT_EQ(extract_answer("nested \\boxed{x^{2}}").value(), "x^{2}");
  EXPECT_EQ(extract_answer("The total is 1,234.5 dollars.").value(), "1,234.5");
  EXPECT_EQ(extract_answer("It is -12.").value(), "-12");
  EXPECT_FALSE(extract_answer("no digits here").has_value());
  EXPECT_EQ(extract_answer("unclosed \\boxed{12 and then 5").value(), "5");
}

TEST(AnswerExtraction, NumericEquivalence) {
  EXPECT_TRUE(answers_equivalent("1,234", "1234"));
  EXPECT_TRUE(answers_equivalent("3.50", "3.5"));
  EXPECT_TRUE(answers_equivalent("$12", "12"));
  EXPECT_TRUE(answers_equivalent("3/4", "0.75"));
  EXPECT_TRUE(answers_equivalent("50%", "0.5"));
  EXPECT_TRUE(answers_equivalent("7.", "7"));
  EXPECT_FALSE(answers_equivalent("7.01", "7"));
  EXPECT_FALSE(answers_equivalent("inf", "inf1"));
  EXPECT_FALSE(parse_number("nan").has_value());
  EXPECT_FALSE(parse_number("0x1A").has_value());
  EXPECT_FALSE(parse_number("1/0").has_value());
  EXPECT_TRUE(answers_equivalent("x^{2}", "x^{2}"));
}

TEST(Countdown, VerifiesExpressions) {
  const std::vector<int64_t> nums = {3, 5, 8};
  EXPECT_TRUE(verify_countdown("(8 - 5) * 8", {8, 5, 8}, 24).correct);
  EXPECT_TRUE(verify_countdown("3 * 8", {3, 8}, 24).correct);
  EXPECT_TRUE(verify_countdown("8 * (5 - 3) + 8", {8, 5, 3, 8}, 24).correct);
  EXPECT_TRUE(verify_countdown("(3 / 2) * 16", {3, 2, 16}, 24).correct);  // exact rationals
  auto r = verify_countdown("3 * 8", nums, 24);
  EXPECT_TRUE(r.parsed);
  EXPECT_FALSE(r.numbers_ok);  // 5 unused
  r = verify_countdown("3 * 5 + 8", nums, 24);
  EXPECT_TRUE(r.numbers_ok);
  EXPECT_FALSE(r.correct);  // 23
  EXPECT_FALSE(verify_countdown("3 * 3 * 8 + 5", nums, 77).numbers_ok);  // 3 used twice
  EXPECT_EQ(verify_countdown("8 / (5 - 5) + 3", {8, 5, 5, 3}, 3).error, "division by zero");
  EXPECT_FALSE(verify_countdown("8 / 3 * 5", nums, 13).correct);  // 40/3 is not an integer
  EXPECT_FALSE(verify_countdown("-3 + 8 + 5", nums, 10).parsed);  // no unary minus
  EXPECT_FALSE(verify_countdown("3 ** 5 + 8", nums, 251).parsed);
  EXPECT_FALSE(verify_countdown("(3 + 5", nums, 8).parsed);
  EXPECT_FALSE(verify_countdown("", nums, 8).parsed);
}

TEST(Countdown, ExtractsTheCommittedExpression) {
  EXPECT_EQ(extract_countdown_expression("think...\n<answer> (8 - 5) * 8 </answer>"), "(8 - 5) * 8");
  EXPECT_EQ(extract_countdown_expression("Step: 8 - 5 = 3.\nAnswer: (8 - 5) * 8 = 24\n"), "(8 - 5) * 8");
  EXPECT_EQ(extract_countdown_expression("just\n3 * 8"), "3 * 8");
}

TEST(Countdown, ArbitraryTextIsScoredQuicklyWithoutCrashing) {
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(verify_countdown(std::string(100000, '('), {1}, 1).parsed);
  EXPECT_FALSE(verify_countdown(std::string(200, '(') + "1" + std::string(200, ')'), {1}, 1).parsed);  // too deep
  EXPECT_FALSE(verify_countdown("99999999999*99999999999*99999999999*99999999999*99999999999*9",
                                {99999999999, 99999999999, 99999999999, 99999999999, 99999999999, 9}, 1)
                   .correct);  // overflow is wrong, not UB
  std::mt19937 rng(1);
  const std::string alphabet = "0123456789+-*/() x\n<>answer:=";
  for (int i = 0; i < 2000; ++i) {
    std::string s(rng() % 300, ' ');
    for (auto& c : s) c = alphabet[rng() % alphabet.size()];
    (void)verify_countdown(extract_countdown_expression(s), {1, 2, 3}, 6);
    (void)extract_answer(s);
  }
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 5.0);
}

TEST(Rewards, CompositeWeightsAndComponents) {
  CompositeReward reward({{"countdown", 1.0, {}}, {"format", 0.1, {{"marker", "Answer:"}}},
                          {"length", 1.0, {{"cache_length", 4}}}});
  const nlohmann::json example = {{"numbers", {3, 5, 8}}, {"target", 49}};
  const std::string prompt = "p", good = "Answer: 8 * 5 + 3 * 3", right = "Answer: 5 * 8 + 3 = 43";
  RewardBreakdown b = reward.score({prompt, good, example, 6, 10, false});
  EXPECT_FALSE(b.correct);  // uses 3 twice
  EXPECT_DOUBLE_EQ(b.total, 0.1 - 0.0);
  const nlohmann::json ex43 = {{"numbers", {3, 5, 8}}, {"target", 43}};
  b = reward.score({prompt, right, ex43, 8, 10, false});
  EXPECT_TRUE(b.correct);
  // length: soft limit 10 - 4 = 6, 8 tokens -> -(2/4).
  EXPECT_DOUBLE_EQ(b.components[2].value, -0.5);
  EXPECT_DOUBLE_EQ(b.total, 1.0 + 0.1 - 0.5);
  ASSERT_EQ(b.components.size(), 3u);
  EXPECT_EQ(b.components[1].name, "format");
}

TEST(Rewards, MathAnswerAndConfigErrors) {
  CompositeReward reward({{"math_answer", 1.0, {}}});
  const nlohmann::json example = {{"answer", "84"}};
  EXPECT_TRUE(reward.score({"q", "12 * 7 = 84\n#### 84", example, 5, 10, false}).correct);
  EXPECT_FALSE(reward.score({"q", "#### 85", example, 5, 10, false}).correct);
  const nlohmann::json numeric = {{"answer", 84}};
  EXPECT_TRUE(reward.score({"q", "so \\boxed{84}", numeric, 5, 10, false}).correct);
  // A row the reward cannot judge is an error, not a silent 0.
  EXPECT_THAT(test::error_of([&] { reward.score({"q", "#### 84", nlohmann::json::object(), 5, 10, false}); }),
              HasSubstr("math_answer reward: the row has no 'answer' field"));
  // ... and is found when the dataset is loaded: row_problem names the component and the reason.
  EXPECT_EQ(reward.row_problem(example), "");
  EXPECT_THAT(reward.row_problem({{"question", "q"}}), HasSubstr("math_answer reward: the row has no 'answer' field"));
  CompositeReward countdown({{"countdown", 1.0, {}}});
  EXPECT_THAT(test::error_of([&] { countdown.score({"q", "Answer: 3 * 8", {{"target", 24}}, 5, 10, false}); }),
              HasSubstr("countdown reward: the row needs 'numbers'"));
  EXPECT_EQ(countdown.row_problem({{"numbers", {1, 2}}, {"target", 3}}), "");
  EXPECT_NE(countdown.row_problem({{"numbers", {1, 2.5}}, {"target", 3}}), "");
  EXPECT_NE(countdown.row_problem({{"numbers", nlohmann::json::array()}, {"target", 3}}), "");
  EXPECT_NE(countdown.row_problem({{"numbers", {1, 2}}, {"target", "3"}}), "");
  EXPECT_THAT(test::error_of([] { CompositeReward r({{"bleu", 1.0, {}}}); }),
              HasSubstr("unknown reward component 'bleu' (registered: arithmetic_claims, countdown, external, format, length, math_answer)"));
  EXPECT_THAT(test::error_of([] { CompositeReward r({{"format", 1.0, {{"pattern", "x"}}}}); }),
              HasSubstr("reward.components[0].pattern: unknown parameter (allowed: marker)"));
}

}  // namespace
}  // namespace anchor::rewards
