#include "trainer/model/pre_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>

#include "trainer/common/error.h"

namespace anchor {

const char* const kGpt2SplitPattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

namespace {

// Unicode White_Space, as members of a character class.
constexpr const char* kWhiteSpaceMembers =
    R"(\t-\r\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";

pcre2_code* as_code(void* p) { return static_cast<pcre2_code*>(p); }

}  // namespace

std::string white_space_as_unicode(const std::string& pattern, const std::string& source) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char n = pattern[i + 1];
      if (n == 's') {
        out += in_class ? std::string(kWhiteSpaceMembers) : std::string("[") + kWhiteSpaceMembers + "]";
      } else if (n == 'S') {
        AR_CHECK(!in_class, source, ": regex '", pattern, "': \\S inside a character class is not supported");
        out += std::string("[^") + kWhiteSpaceMembers + "]";
      } else {
        out += c;
        out += n;
      }
      ++i;
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      // A ']' right after '[' or '[^' is a literal member, not the end of the class.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];
      continue;
    }
    if (in_class && c == ']') in_class = false;
    out += c;
  }
  return out;
}

UnicodeRegex::UnicodeRegex(const std::string& pattern, const std::string& source) : pattern_(pattern) {
  const std::string rewritten = white_space_as_unicode(pattern, source);
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(rewritten.data()), rewritten.size(),
                                   PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
  if (!code) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof(message));
    AR_FAIL(source, ": regex '", pattern, "' does not compile (", reinterpret_cast<const char*>(message),
            " at offset ", offset, ")");
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // optional speed-up; the interpreter is the fallback
  code_ = code;
}

UnicodeRegex::~UnicodeRegex() {
  if (code_) pcre2_code_free(as_code(code_));
}

std::vector<std::pair<size_t, size_t>> UnicodeRegex::find_all(const std::string& text) const {
  std::vector<std::pair<size_t, size_t>> out;
  pcre2_match_data* data = pcre2_match_data_create_from_pattern(as_code(code_), nullptr);
  AR_CHECK(data, "PCRE2: out of memory");
  size_t start = 0;
  const auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  while (start <= text.size()) {
    // The text was validated once by the caller: no per-call UTF check.
    const int rc = pcre2_match(as_code(code_), subject, text.size(), start, start == 0 ? 0 : PCRE2_NO_UTF_CHECK, data,
                               nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      pcre2_match_data_free(data);
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(rc, message, sizeof(message));
      AR_FAIL("regex '", pattern_, "' failed on the text (", reinterpret_cast<const char*>(message), ")");
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(data);
    const size_t b = ov[0], e = ov[1];
    if (e > b) {
      out.emplace_back(b, e);
      start = e;
    } else {
      // An empty match adds no piece; step over one character.
      start = b + 1;
      while (start < text.size() && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) ++start;
    }
  }
  pcre2_match_data_free(data);
  return out;
}

namespace {

unicode::AlignedText slice(const unicode::AlignedText& t, size_t b, size_t e) {
  unicode::AlignedText out;
  out.text = t.text.substr(b, e - b);
  out.origin.assign(t.origin.begin() + static_cast<long>(b), t.origin.begin() + static_cast<long>(e));
  return out;
}

enum class Behavior { removed, isolated, merged_with_previous, merged_with_next, contiguous };

// Splits every piece at the matches of `regex` (HF NormalizedString::split).
Pieces split_pieces(Pieces pieces, const UnicodeRegex& regex, Behavior behavior, bool invert) {
  Pieces out;
  for (const auto& piece : pieces) {
    if (piece.text.empty()) continue;
    // (range, is_match) covering the piece.
    std::vector<std::pair<std::pair<size_t, size_t>, bool>> parts;
    size_t last = 0;
    for (const auto& [b, e] : regex.find_all(piece.text)) {
      if (b > last) parts.push_back({{last, b}, false});
      parts.push_back({{b, e}, true});
      last = e;
    }
    if (last < piece.text.size()) parts.push_back({{last, piece.text.size()}, false});
    if (invert)
      for (auto& p : parts) p.second = !p.second;

    std::vector<std::pair<size_t, size_t>> ranges;
    switch (behavior) {
      case Behavior::removed:
        for (const auto& [r, m] : parts)
          if (!m) ranges.push_back(r);
        break;
      case Behavior::isolated:
        for (const auto& [r, m] : parts) ranges.push_back(r);
        break;
      case Behavior::merged_with_previous: {
        bool previous_match = false;
        for (const auto& [r, m] : parts) {
          if (m && !previous_match && !ranges.empty()) ranges.back().second = r.second;
          else ranges.push_back(r);
          previous_match = m;
        }
        break;
      }
      case Behavior::merged_with_next: {
        // Right to left: a match joins the part after it unless that part is a match too.
        bool next_match = false;
        for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
          const auto& [r, m] = *it;
          if (m && !next_match && !ranges.empty()) ranges.back().first = r.first;
          else ranges.push_back(r);
          next_match = m;
        }
        std::reverse(ranges.begin(), ranges.end());
        break;
      }
      case Behavior::contiguous: {
        bool previous_match = false;
        for (const auto& [r, m] : parts) {
          if (m && previous_match) ranges.back().second = r.second;
          else ranges.push_back(r);
          previous_match = m;
        }
        break;
      }
    }
    for (const auto& [b, e] : ranges)
      if (e > b) out.push_back(slice(piece, b, e));
  }
  return out;
}

Behavior parse_behavior(const nlohmann::json& spec, const std::string& source) {
  const std::string name = spec.value("behavior", std::string("Isolated"));
  if (name == "Removed") return Behavior::removed;
  if (name == "Isolated") return Behavior::isolated;
  if (name == "MergedWithPrevious") return Behavior::merged_with_previous;
  if (name == "MergedWithNext") return Behavior::merged_with_next;
  if (name == "Contiguous") return Behavior::contiguous;
  AR_FAIL(source, ": Split behavior '", name,
          "' is not one of Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous");
}

// Escapes a literal so PCRE2 matches it verbatim.
std::string quote_literal(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::string("\\^$.|?*+()[]{}-/").find(c) != std::string::npos) out += '\\';
    out += c;
  }
  return out;
}

class SplitPreTokenizer : public PreTokenizer {
 public:
  SplitPreTokenizer(const std::string& pattern, Behavior behavior, bool invert, const std::string& source)
      : regex_(pattern, source), behavior_(behavior), invert_(invert) {}
  Pieces apply(Pieces pieces) const override { return split_pieces(std::move(pieces), regex_, behavior_, invert_); }

 private:
  UnicodeRegex regex_;
  Behavior behavior_;
  bool invert_;
};

class ByteLevelPreTokenizer : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex, const std::string& source)
      : add_prefix_space_(add_prefix_space) {
    if (use_regex) regex_ = std::make_unique<UnicodeRegex>(kGpt2SplitPattern, source);
  }
  Pieces apply(Pieces pieces) const override {
    if (add_prefix_space_) {
      for (auto& p : pieces) {
        if (p.text.empty() || p.text[0] == ' ') continue;
        // The inserted space comes from nowhere: an empty range at the piece's start.
        const size_t at = p.origin.empty() ? 0 : p.origin[0].first;
        p.text.insert(p.text.begin(), ' ');
        p.origin.insert(p.origin.begin(), {at, at});
      }
    }
    if (!regex_) return pieces;
    return split_pieces(std::move(pieces), *regex_, Behavior::isolated, false);
  }
  bool maps_bytes() const override { return true; }

 private:
  bool add_prefix_space_;
  std::unique_ptr<UnicodeRegex> regex_;
};

class SequencePreTokenizer : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps) : steps_(std::move(steps)) {}
  Pieces apply(Pieces pieces) const override {
    for (const auto& s : steps_) pieces = s->apply(std::move(pieces));
    return pieces;
  }
  bool maps_bytes() const override { return !steps_.empty() && steps_.back()->maps_bytes(); }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

class NoPreTokenizer : public PreTokenizer {
 public:
  Pieces apply(Pieces pieces) const override { return pieces; }
};

}  // namespace

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& spec, const std::string& source) {
  if (spec.is_null()) return std::make_unique<NoPreTokenizer>();
  AR_CHECK(spec.is_object() && spec.contains("type") && spec.at("type").is_string(), source,
           ": pre_tokenizer must be an object with a string 'type', got ", spec.dump().substr(0, 200));
  const std::string type = spec.at("type").get<std::string>();
  const std::string where = source + " (pre_tokenizer " + type + ")";
  if (type == "Sequence") {
    AR_CHECK(spec.contains("pretokenizers") && spec.at("pretokenizers").is_array(), where,
             ": needs a 'pretokenizers' list");
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (const auto& s : spec.at("pretokenizers")) {
      AR_CHECK(steps.empty() || !steps.back()->maps_bytes(), where,
               ": ByteLevel must be the last pre-tokenizer of the sequence (anchor-rl maps bytes at the end)");
      steps.push_back(make_pre_tokenizer(s, source));
    }
    return std::make_unique<SequencePreTokenizer>(std::move(steps));
  }
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevelPreTokenizer>(spec.value("add_prefix_space", true), spec.value("use_regex", true),
                                                   where);
  }
  if (type == "Split") {
    AR_CHECK(spec.contains("pattern") && spec.at("pattern").is_object(), where, ": needs a 'pattern' object");
    const auto& p = spec.at("pattern");
    std::string pattern;
    if (p.contains("Regex") && p.at("Regex").is_string()) pattern = p.at("Regex").get<std::string>();
    else if (p.contains("String") && p.at("String").is_string()) pattern = quote_literal(p.at("String").get<std::string>());
    else AR_FAIL(where, ": pattern must be {\"Regex\": ...} or {\"String\": ...}, got ", p.dump());
    return std::make_unique<SplitPreTokenizer>(pattern, parse_behavior(spec, where), spec.value("invert", false), where);
  }
  if (type == "Digits") {
    const bool individual = spec.value("individual_digits", false);
    return std::make_unique<SplitPreTokenizer>(R"(\p{N})", individual ? Behavior::isolated : Behavior::contiguous,
                                               false, where);
  }
  AR_FAIL(source, ": pre_tokenizer type '", type,
          "' is not supported (anchor-rl reads byte-level BPE tokenizers: ByteLevel, Split, Digits, Sequence)");
}

}  // namespace anchor
