// Text transformations of the two SFT modes (docs/design.md §6), torch-free:
//   conditional        <|good|> / <|bad|> before each sentence of the target text, from its
//                      score and a threshold, a seeded fraction of sentences left without one
//                      (Korbak et al. 2023, "Pretraining Language Models with Human Preferences")
//   context_indicator  " [IND]" appended to a context-dependent user message (Wang et al., "On
//                      the Loss of Context-awareness in General Instruction Fine-tuning"):
//                      with_indicator() in trainer/rollout/control_tokens.h, which generation shares
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "trainer/rollout/control_tokens.h"

namespace anchor::sft {

struct LabeledSentence {
  size_t begin = 0, end = 0;  // byte range in the text (credit's segmentation: a partition)
  double score = 0.0;
  Control control = Control::none;
};

// Sentences of a target text: credit/sentence_segmentation.h's rule with min_chars.
std::vector<std::pair<size_t, size_t>> target_sentences(const std::string& text, int64_t min_chars);

// The p-th percentile (p in [0, 100]) of the scores with linear interpolation between the
// closest ranks (numpy's default). Empty scores are an error.
double score_percentile(std::vector<double> scores, double p);

// Whether sentence `sentence` of record `record` is left without a control token: a uniform
// draw from (seed, record, sentence) alone is below `fraction`, so the choice does not depend
// on the order in which records are prepared.
bool leaves_unconditioned(uint64_t seed, int64_t record, int64_t sentence, double fraction);

// good when score >= threshold, else bad.
Control control_for_score(double score, double threshold);

// The text with each labelled sentence's control token inserted where the sentence starts:
// before the whitespace that separates it from the previous sentence (so a byte-level BPE still
// sees " word" and tokenises the sentence as before), at byte 0 for the first sentence.
// Example: "A. B." with good, bad -> "<|good|>A.<|bad|> B.".
std::string with_control_tokens(const std::string& text, const std::vector<LabeledSentence>& sentences);

}  // namespace anchor::sft
