#include "trainer/sft/control_text.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "credit/sentence_segmentation.h"
#include "trainer/common/error.h"
#include "trainer/common/splitmix.h"

namespace anchor::sft {
namespace {

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

}  // namespace

std::vector<std::pair<size_t, size_t>> target_sentences(const std::string& text, int64_t min_chars) {
  return credit::segment_sentences(text, min_chars);
}

double score_percentile(std::vector<double> scores, double p) {
  AR_CHECK(!scores.empty(), "score percentile: no scores (the dataset has no target sentences)");
  AR_CHECK(p >= 0 && p <= 100, "score percentile: p must be in [0, 100], got ", p);
  std::sort(scores.begin(), scores.end());
  const double rank = p / 100.0 * static_cast<double>(scores.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(rank));
  const size_t hi = std::min(lo + 1, scores.size() - 1);
  const double frac = rank - static_cast<double>(lo);
  return scores[lo] + (scores[hi] - scores[lo]) * frac;
}

bool leaves_unconditioned(uint64_t seed, int64_t record, int64_t sentence, double fraction) {
  if (fraction <= 0) return false;
  const uint64_t h = splitmix64_mix(splitmix64_mix(splitmix64_mix(seed + 0x5F3759DFull) ^ static_cast<uint64_t>(record)) ^
                                    static_cast<uint64_t>(sentence));
  const double u = static_cast<double>(h >> 11) * 0x1.0p-53;  // [0, 1)
  return u < fraction;
}

Control control_for_score(double score, double threshold) { return score >= threshold ? Control::good : Control::bad; }

std::string with_control_tokens(const std::string& text, const std::vector<LabeledSentence>& sentences) {
  std::string out;
  size_t copied = 0;
  for (size_t k = 0; k < sentences.size(); ++k) {
    const LabeledSentence& s = sentences[k];
    AR_CHECK(s.begin <= s.end && s.end <= text.size() && s.begin >= copied, "with_control_tokens: sentence ", k,
             " [", s.begin, ", ", s.end, ") is out of order or outside the text");
    size_t at = s.begin;
    if (k > 0)  // back over the whitespace that closes the previous sentence
      while (at > sentences[k - 1].begin && at > copied && is_space(text[at - 1])) --at;
    out.append(text, copied, at - copied);
    out += control_token_text(s.control);
    copied = at;
  }
  out.append(text, copied, std::string::npos);
  return out;
}

}  // namespace anchor::sft
