#include "trainer/model/bpe_model.h"

#include <queue>

#include "trainer/common/error.h"

namespace anchor {

namespace {

// The two tokens of a merges entry: "a b" (byte-level tokens never hold a plain space) or
// ["a", "b"] (the newer layout, which allows spaces).
std::pair<std::string, std::string> merge_parts(const nlohmann::json& entry, size_t index, const std::string& source) {
  if (entry.is_string()) {
    const std::string s = entry.get<std::string>();
    const size_t space = s.find(' ');
    AR_CHECK(space != std::string::npos && space > 0 && space + 1 < s.size() && s.find(' ', space + 1) == std::string::npos,
             source, ": merges[", index, "] '", s, "' is not two tokens separated by one space");
    return {s.substr(0, space), s.substr(space + 1)};
  }
  AR_CHECK(entry.is_array() && entry.size() == 2 && entry[0].is_string() && entry[1].is_string(), source, ": merges[",
           index, "] must be \"a b\" or [\"a\", \"b\"], got ", entry.dump());
  return {entry[0].get<std::string>(), entry[1].get<std::string>()};
}

}  // namespace

BpeModel::BpeModel(const nlohmann::json& spec, const std::string& source) {
  AR_CHECK(spec.is_object(), source, ": 'model' must be an object");
  const std::string type = spec.value("type", std::string("BPE"));
  AR_CHECK(type == "BPE", source, ": model type '", type,
           "' is not supported (anchor-rl reads byte-level BPE tokenizer.json files; WordPiece, Unigram and WordLevel "
           "are not; a SentencePiece model is read from tokenizer.model)");
  AR_CHECK(!spec.contains("dropout") || spec.at("dropout").is_null() ||
               (spec.at("dropout").is_number() && spec.at("dropout").get<double>() == 0.0),
           source, ": BPE dropout is a training-time option; anchor-rl needs dropout null");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const bool unset = !spec.contains(key) || spec.at(key).is_null() ||
                       (spec.at(key).is_string() && spec.at(key).get<std::string>().empty());
    AR_CHECK(unset, source, ": BPE ", key, " is not supported (byte-level BPE does not use it)");
  }
  AR_CHECK(!spec.value("byte_fallback", false), source,
           ": BPE byte_fallback (SentencePiece-style BPE) is not supported; use the model's tokenizer.model");
  ignore_merges_ = spec.value("ignore_merges", false);

  AR_CHECK(spec.contains("vocab") && spec.at("vocab").is_object(), source, ": model.vocab must be an object {token: id}");
  int64_t max_id = -1;
  for (const auto& [token, id_json] : spec.at("vocab").items()) {
    AR_CHECK(id_json.is_number_integer() && id_json.get<int64_t>() >= 0, source, ": model.vocab['", token,
             "'] must be a non-negative integer id");
    const int64_t id = id_json.get<int64_t>();
    AR_CHECK(vocab_.emplace(token, id).second, source, ": model.vocab has '", token, "' twice");
    max_id = std::max(max_id, id);
  }
  AR_CHECK(max_id >= 0, source, ": model.vocab is empty");
  AR_CHECK(max_id < (int64_t{1} << 31), source, ": model.vocab id ", max_id, " is too large");
  id_to_token_.assign(static_cast<size_t>(max_id + 1), std::string());
  has_id_.assign(static_cast<size_t>(max_id + 1), false);
  for (const auto& [token, id] : vocab_) {
    AR_CHECK(!has_id_[static_cast<size_t>(id)], source, ": model.vocab gives id ", id, " to both '",
             id_to_token_[static_cast<size_t>(id)], "' and '", token, "'");
    id_to_token_[static_cast<size_t>(id)] = token;
    has_id_[static_cast<size_t>(id)] = true;
  }

  if (spec.contains("unk_token") && spec.at("unk_token").is_string()) {
    unk_id_ = token_to_id(spec.at("unk_token").get<std::string>());
    AR_CHECK(unk_id_ >= 0, source, ": model.unk_token '", spec.at("unk_token").get<std::string>(),
             "' is not in the vocabulary");
  }

  AR_CHECK(spec.contains("merges") && spec.at("merges").is_array(), source, ": model.merges must be a list");
  const auto& merges = spec.at("merges");
  merges_.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const auto [a, b] = merge_parts(merges[i], i, source);
    const int64_t ia = token_to_id(a), ib = token_to_id(b), im = token_to_id(a + b);
    AR_CHECK(ia >= 0, source, ": merges[", i, "] '", a, " ", b, "' uses '", a, "', which is not in the vocabulary");
    AR_CHECK(ib >= 0, source, ": merges[", i, "] '", a, " ", b, "' uses '", b, "', which is not in the vocabulary");
    AR_CHECK(im >= 0, source, ": merges[", i, "] '", a, " ", b, "' makes '", a + b, "', which is not in the vocabulary");
    merges_[pair_key(ia, ib)] = Merge{static_cast<int64_t>(i), im};  // a repeated pair: the last entry wins, as in tokenizers
  }
}

int64_t BpeModel::token_to_id(const std::string& token) const {
  const auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

const std::string& BpeModel::id_to_token(int64_t id) const {
  static const std::string kNone;
  return id >= 0 && id < vocab_size() ? id_to_token_[static_cast<size_t>(id)] : kNone;
}

void BpeModel::merge_word(const std::vector<std::string>& chars, std::vector<int64_t>& ids,
                          std::vector<CharRange>& char_ranges) const {
  struct Symbol {
    int64_t id;
    int64_t prev, next;
    size_t chars;
    size_t first;  // index of the symbol's first character in the word
  };
  std::vector<Symbol> symbols;
  symbols.reserve(chars.size());
  for (size_t k = 0; k < chars.size(); ++k) {
    int64_t id = token_to_id(chars[k]);
    if (id < 0) {
      if (unk_id_ < 0) continue;  // as the tokenizers library: an unknown character without unk is dropped
      id = unk_id_;
    }
    const int64_t index = static_cast<int64_t>(symbols.size());
    symbols.push_back(Symbol{id, index - 1, index + 1, 1, k});
  }
  if (!symbols.empty()) symbols.back().next = -1;

  struct Candidate {
    int64_t rank, pos, merged;
    bool operator<(const Candidate& o) const {  // priority_queue pops the largest: invert
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Candidate> queue;
  auto push_pair = [&](int64_t left) {
    const int64_t right = symbols[static_cast<size_t>(left)].next;
    if (right < 0) return;
    const auto it = merges_.find(pair_key(symbols[static_cast<size_t>(left)].id, symbols[static_cast<size_t>(right)].id));
    if (it != merges_.end()) queue.push(Candidate{it->second.rank, left, it->second.merged});
  };
  for (int64_t i = 0; i + 1 < static_cast<int64_t>(symbols.size()); ++i) push_pair(i);
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[static_cast<size_t>(top.pos)];
    if (left.chars == 0 || left.next < 0) continue;  // removed, or nothing to its right any more
    Symbol& right = symbols[static_cast<size_t>(left.next)];
    const auto it = merges_.find(pair_key(left.id, right.id));
    if (it == merges_.end() || it->second.merged != top.merged) continue;  // a stale candidate
    left.id = top.merged;
    left.chars = right.first + right.chars - left.first;  // spans a dropped character between them
    right.chars = 0;
    left.next = right.next;
    if (left.next >= 0) symbols[static_cast<size_t>(left.next)].prev = top.pos;
    if (left.prev >= 0) push_pair(left.prev);
    push_pair(top.pos);
  }
  for (const Symbol& s : symbols) {
    if (s.chars == 0) continue;
    ids.push_back(s.id);
    char_ranges.emplace_back(s.first, s.first + s.chars);
  }
}

void BpeModel::tokenize(const std::string& word, std::vector<int64_t>& ids, std::vector<CharRange>& char_ranges) const {
  if (word.empty()) return;
  // Characters of the word (UTF-8).
  std::vector<std::string> chars;
  for (size_t pos = 0; pos < word.size();) {
    const auto b = static_cast<unsigned char>(word[pos]);
    const size_t n = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
    chars.push_back(word.substr(pos, n));
    pos += n;
  }
  if (ignore_merges_) {
    const int64_t id = token_to_id(word);
    if (id >= 0) {
      ids.push_back(id);
      char_ranges.emplace_back(0, chars.size());
      return;
    }
  }
  constexpr size_t kCacheableChars = 256, kCacheEntries = 100000;
  const bool cacheable = chars.size() < kCacheableChars;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    const auto it = cache_.find(word);
    if (it != cache_.end()) {
      ids.insert(ids.end(), it->second.ids.begin(), it->second.ids.end());
      char_ranges.insert(char_ranges.end(), it->second.char_ranges.begin(), it->second.char_ranges.end());
      return;
    }
  }
  Cached result;
  merge_word(chars, result.ids, result.char_ranges);
  ids.insert(ids.end(), result.ids.begin(), result.ids.end());
  char_ranges.insert(char_ranges.end(), result.char_ranges.begin(), result.char_ranges.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() >= kCacheEntries) cache_.clear();
    cache_.emplace(word, std::move(result));
  }
}

}  // namespace anchor
