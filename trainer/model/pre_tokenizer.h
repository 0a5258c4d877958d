// Pre-tokenizers of Hugging Face tokenizer.json files: the splits a text goes through before
// BPE sees it. Supported: Split (regex or literal pattern, all five delimiter behaviours,
// invert), ByteLevel (optional prefix space, GPT-2 regex, byte -> character mapping), Digits
// and Sequence — what GPT-2 / SmolLM2, Llama 3, Qwen2 / Qwen3 tokenizers declare. Regexes run
// on PCRE2 with Unicode properties; `\s` / `\S` are rewritten to Unicode White_Space (what
// the Oniguruma engine of the `tokenizers` library matches; PCRE2's own `\s` omits U+0085).
// Torch-free.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include "trainer/model/unicode_text.h"

namespace anchor {

// A compiled Unicode regex (PCRE2, UTF + UCP, JIT when available).
class UnicodeRegex {
 public:
  // `source` names the file / key in errors.
  UnicodeRegex(const std::string& pattern, const std::string& source);
  ~UnicodeRegex();
  UnicodeRegex(const UnicodeRegex&) = delete;
  UnicodeRegex& operator=(const UnicodeRegex&) = delete;
  // Non-overlapping, non-empty matches [begin, end) of valid UTF-8 `text`, left to right.
  std::vector<std::pair<size_t, size_t>> find_all(const std::string& text) const;
  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  void* code_ = nullptr;  // pcre2_code_8
};

// Rewrites `\s` / `\S` to explicit Unicode White_Space classes (see above).
std::string white_space_as_unicode(const std::string& pattern, const std::string& source);

// The GPT-2 pattern ByteLevel uses when use_regex is true.
extern const char* const kGpt2SplitPattern;

// Pieces of one text, each with the original offsets of its bytes (AlignedText).
using Pieces = std::vector<unicode::AlignedText>;

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  virtual Pieces apply(Pieces pieces) const = 0;
  // Whether pieces leave this pre-tokenizer in the byte-level alphabet (ByteLevel).
  virtual bool maps_bytes() const { return false; }
};

// Builds a pre-tokenizer from its tokenizer.json object (null = none); unsupported types are
// errors naming `source`.
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& spec, const std::string& source);

}  // namespace anchor
