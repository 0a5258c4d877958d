#include "credit/sentence_segmentation.h"

#include <algorithm>
#include <cctype>

namespace anchor::credit {
namespace {

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

int64_t trimmed_length(const std::string& text, size_t begin, size_t end) {
  while (begin < end && is_space(text[begin])) ++begin;
  while (end > begin && is_space(text[end - 1])) --end;
  return static_cast<int64_t>(end - begin);
}

}  // namespace

std::vector<std::pair<size_t, size_t>> segment_sentences(const std::string& text, int64_t min_chars) {
  // 1. raw chunks at sentence ends and blank lines.
  std::vector<std::pair<size_t, size_t>> chunks;
  const size_t n = text.size();
  size_t start = 0;
  size_t i = 0;
  while (i < n) {
    const char c = text[i];
    bool ends = false;
    if ((c == '.' || c == '?' || c == '!') && i + 1 < n && is_space(text[i + 1])) ends = true;
    if (c == '\n') {  // a blank line: newline, optional spaces, newline
      size_t j = i + 1;
      while (j < n && (text[j] == ' ' || text[j] == '\t' || text[j] == '\r')) ++j;
      if (j < n && text[j] == '\n') ends = true;
    }
    if (!ends) {
      ++i;
      continue;
    }
    size_t end = i + 1;
    while (end < n && is_space(text[end])) ++end;  // trailing whitespace closes this sentence
    chunks.emplace_back(start, end);
    start = end;
    i = end;
  }
  if (start < n) chunks.emplace_back(start, n);

  // 2. short chunks merge forward; a short last chunk merges backward.
  std::vector<std::pair<size_t, size_t>> out;
  bool carrying = false;
  size_t carry_start = 0;
  for (size_t c = 0; c < chunks.size(); ++c) {
    auto chunk = chunks[c];
    if (carrying) chunk.first = carry_start;
    const bool last = c + 1 == chunks.size();
    if (!last && trimmed_length(text, chunk.first, chunk.second) < min_chars) {
      carrying = true;
      carry_start = chunk.first;
      continue;
    }
    carrying = false;
    if (last && !out.empty() && trimmed_length(text, chunk.first, chunk.second) < min_chars)
      out.back().second = chunk.second;
    else
      out.push_back(chunk);
  }
  return out;
}

std::vector<int64_t> token_sentence_ids(const std::string& text, const std::vector<std::pair<size_t, size_t>>& spans,
                                        const std::vector<std::pair<size_t, size_t>>& sentences) {
  std::vector<int64_t> ids(spans.size(), -1);
  if (sentences.empty()) return ids;
  for (size_t t = 0; t < spans.size(); ++t) {
    size_t pos = spans[t].first;
    for (size_t b = spans[t].first; b < std::min(spans[t].second, text.size()); ++b) {
      if (!is_space(text[b])) {
        pos = b;
        break;
      }
    }
    // First sentence whose end lies past pos (sentences partition the text in order).
    auto it = std::upper_bound(sentences.begin(), sentences.end(), pos,
                               [](size_t p, const std::pair<size_t, size_t>& s) { return p < s.second; });
    ids[t] = it == sentences.end() ? static_cast<int64_t>(sentences.size()) - 1
                                   : static_cast<int64_t>(it - sentences.begin());
  }
  return ids;
}

}  // namespace anchor::credit
