// Sentence segmentation of a response for thought anchors (docs/design.md §5.6), and the map from
// sentences to tokens through the tokenizer's byte spans. Torch-free.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace anchor::credit {

// Byte ranges [first, second) that partition `text`. A sentence ends after '.', '?' or '!'
// followed by whitespace, or at a blank line; the whitespace run after the end belongs to
// the sentence it closes. Chunks whose trimmed length is below min_chars merge into the next
// chunk (the last one into the previous). Empty text has no sentences.
std::vector<std::pair<size_t, size_t>> segment_sentences(const std::string& text, int64_t min_chars);

// Sentence index of each token: the sentence holding the token's first non-whitespace byte
// (its first byte if it is all whitespace; the last sentence if it lies past the text).
// -1 for every token when there are no sentences.
std::vector<int64_t> token_sentence_ids(const std::string& text, const std::vector<std::pair<size_t, size_t>>& spans,
                                        const std::vector<std::pair<size_t, size_t>>& sentences);

}  // namespace anchor::credit
