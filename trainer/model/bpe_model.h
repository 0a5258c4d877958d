// The BPE model of a Hugging Face tokenizer.json: vocabulary (token string -> id) and ranked
// merges, applied to one pre-tokenized word the way the `tokenizers` library does (a heap of
// candidate merges, lowest rank first, then leftmost; `ignore_merges` takes a word that is a
// whole vocabulary entry as is). Merges may be written as "a b" strings or ["a", "b"] pairs.
// Torch-free.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace anchor {

class BpeModel {
 public:
  // spec: the "model" object of tokenizer.json (type "BPE"); `source` names the file in errors.
  BpeModel(const nlohmann::json& spec, const std::string& source);

  // Token ids of one word written in the model's alphabet (byte-level characters), and the
  // range [first, second) of alphabet characters each token covers. Characters the vocabulary
  // has no token for are dropped without an unk token (as in `tokenizers`), so the ranges of
  // consecutive tokens need not touch.
  using CharRange = std::pair<size_t, size_t>;
  void tokenize(const std::string& word, std::vector<int64_t>& ids, std::vector<CharRange>& char_ranges) const;

  int64_t vocab_size() const { return static_cast<int64_t>(id_to_token_.size()); }
  int64_t token_to_id(const std::string& token) const;  // -1 if absent
  const std::string& id_to_token(int64_t id) const;      // "" for ids the vocabulary skips
  bool has_id(int64_t id) const { return id >= 0 && id < vocab_size() && has_id_[static_cast<size_t>(id)]; }

 private:
  struct Merge {
    int64_t rank;
    int64_t merged;
  };
  static uint64_t pair_key(int64_t a, int64_t b) { return (static_cast<uint64_t>(a) << 32) | static_cast<uint64_t>(b); }
  void merge_word(const std::vector<std::string>& symbols, std::vector<int64_t>& ids,
                  std::vector<CharRange>& char_ranges) const;

  std::unordered_map<std::string, int64_t> vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> has_id_;
  std::unordered_map<uint64_t, Merge> merges_;
  bool ignore_merges_ = false;
  int64_t unk_id_ = -1;

  // Word -> tokens cache (words repeat a lot); bounded, cleared when full.
  struct Cached {
    std::vector<int64_t> ids;
    std::vector<CharRange> char_ranges;
  };
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, Cached> cache_;
};

}  // namespace anchor
