#include "rewards/reward_protocol.h"

#include <cmath>
#include <limits>

#include "trainer/common/error.h"

namespace anchor::rewards {
namespace {

using nlohmann::json;

// A long answer is quoted by its start only.
std::string quoted_start(std::string_view text) {
  constexpr size_t kMax = 200;
  std::string out(text.substr(0, kMax));
  for (char& c : out)
    if (c == '\n' || c == '\r') c = ' ';
  return "'" + out + (text.size() > kMax ? "...'" : "'");
}

std::string type_of(const json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "the string " + quoted_start(v.get<std::string>());
  if (v.is_array()) return "a list";
  return "an object";
}

double score_value(const json& v, const std::string& where) {
  if (v.is_number() && !v.is_boolean()) return v.get<double>();
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    if (s == "NaN") return std::numeric_limits<double>::quiet_NaN();
    if (s == "Infinity") return std::numeric_limits<double>::infinity();
    if (s == "-Infinity") return -std::numeric_limits<double>::infinity();
  }
  AR_FAIL(where, ": expected a number (or \"NaN\", \"Infinity\", \"-Infinity\"), got ", type_of(v));
}

std::vector<double> score_list(const json& v, size_t rows, const std::string& where) {
  AR_CHECK(v.is_array(), where, ": expected a list of ", rows, " numbers (one per row), got ", type_of(v));
  AR_CHECK(v.size() == rows, where, ": expected ", rows, " numbers (one per row), got ", v.size());
  std::vector<double> out;
  out.reserve(rows);
  for (size_t i = 0; i < rows; ++i) out.push_back(score_value(v[i], str_cat(where, "[", i, "] (row ", i, ")")));
  return out;
}

}  // namespace

std::string reward_request_line(const std::vector<RewardInput>& rows) {
  json list = json::array();
  for (const RewardInput& r : rows)
    list.push_back({{"prompt", r.prompt},
                    {"completion", r.response},
                    {"completion_tokens", r.response_tokens},
                    {"max_new_tokens", r.max_new_tokens},
                    {"finish_reason", r.truncated ? "length" : "stop"},
                    {"example", r.example}});
  const json request = {{"protocol", kRewardProtocolVersion}, {"rows", std::move(list)}};
  // replace: generated text may end inside a UTF-8 character; the program gets U+FFFD there.
  return request.dump(-1, ' ', false, json::error_handler_t::replace);
}

RewardAnswer parse_reward_answer(std::string_view line, size_t rows, const std::vector<std::string>& sub_score_names,
                                 const std::string& origin) {
  const json answer = json::parse(line.begin(), line.end(), nullptr, false);
  AR_CHECK(!answer.is_discarded(), origin, ": the answer is not JSON: ", quoted_start(line),
           " (one JSON object per line; non-finite scores are the strings \"NaN\", \"Infinity\", \"-Infinity\")");
  AR_CHECK(answer.is_object(), origin, ": the answer must be a JSON object, got ", type_of(answer));
  if (answer.contains("error")) {
    const json& e = answer.at("error");
    AR_FAIL(origin, ": the reward program reported an error: ", e.is_string() ? e.get<std::string>() : e.dump());
  }
  for (const auto& [key, _] : answer.items())
    AR_CHECK(key == "scores" || key == "sub_scores" || key == "notes", origin, ": unknown field '", key,
             "' in the answer (expected scores, sub_scores, notes, or error)");
  AR_CHECK(answer.contains("scores"), origin, ": the answer has no 'scores' (a list of ", rows,
           " numbers, one per row)");
  RewardAnswer out;
  out.scores = score_list(answer.at("scores"), rows, origin + ": scores");

  const json& subs = answer.contains("sub_scores") ? answer.at("sub_scores") : json(json::object());
  AR_CHECK(subs.is_object(), origin, ": sub_scores: expected an object {name: [one number per row]}, got ",
           type_of(subs));
  for (const auto& [name, _] : subs.items()) {
    bool declared = false;
    for (const std::string& d : sub_score_names) declared = declared || d == name;
    AR_CHECK(declared, origin, ": sub_scores.", name,
             ": not declared (list every sub-score under the component's sub_scores, so its column is known before the run)");
  }
  for (const std::string& name : sub_score_names) {
    AR_CHECK(subs.contains(name), origin, ": sub_scores.", name, ": missing (declared in the config)");
    out.sub_scores.push_back(score_list(subs.at(name), rows, origin + ": sub_scores." + name));
  }

  out.notes.assign(rows, "");
  if (answer.contains("notes")) {
    const json& notes = answer.at("notes");
    AR_CHECK(notes.is_array() && notes.size() == rows, origin, ": notes: expected a list of ", rows,
             " strings or nulls (one per row), got ", notes.is_array() ? std::to_string(notes.size()) + " items" : type_of(notes));
    for (size_t i = 0; i < rows; ++i) {
      AR_CHECK(notes[i].is_string() || notes[i].is_null(), origin, ": notes[", i, "] (row ", i,
               "): expected a string or null, got ", type_of(notes[i]));
      if (notes[i].is_string()) out.notes[i] = notes[i].get<std::string>();
    }
  }
  return out;
}

}  // namespace anchor::rewards
