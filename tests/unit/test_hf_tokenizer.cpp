// tokenizer.json (byte-level BPE) against the Python `tokenizers` library, plus hand-made
// tokenizers for the BPE merge order, pre-tokenizer behaviours, added-token rules and errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <fstream>

#include "tests/unit/test_util.h"
#include "trainer/model/byte_level.h"
#include "trainer/model/pre_tokenizer.h"
#include "trainer/model/tokenizer.h"
#include "trainer/model/unicode_text.h"

namespace anchor {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::error_of;
using ::testing::HasSubstr;

std::string tokenizer_fixtures() { return test::test_root() + "/tokenizers"; }

// ---- against `tokenizers`: every reference string ------------------------------------------

class TokenizerJsonReference : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizerJsonReference, IdsDecodeAndSpansMatchTheTokenizersLibrary) {
  ANCHOR_REQUIRE_FIXTURES();
  const std::string name = GetParam();
  const Tokenizer tok = Tokenizer::load(tokenizer_fixtures() + "/" + name);
  EXPECT_THAT(tok.format(), HasSubstr("tokenizer.json"));
  std::ifstream in(tokenizer_fixtures() + "/" + name + ".reference.json");
  ASSERT_TRUE(in.good()) << "missing reference for " << name;
  const json ref = json::parse(in);
  ASSERT_GE(ref.size(), 10000u);
  const bool normalizes = name == "qwen2_style";  // NFC
  size_t id_mismatches = 0, decode_mismatches = 0, span_failures = 0, offset_mismatches = 0, with_partial_chars = 0;
  // ASCII bytes the vocabulary has no token for (SmolLM2 lacks 21 control bytes): dropped when
  // encoding, as `tokenizers` drops them. Every byte >= 0x80 has a byte-level token.
  std::array<bool, 128> lacked{};
  for (int c = 0; c < 128; ++c) lacked[c] = tok.encode(std::string(1, static_cast<char>(c)), false).empty();
  auto is_lacked = [&](char c) { return static_cast<unsigned char>(c) < 0x80 && lacked[static_cast<unsigned char>(c)]; };
  for (const auto& row : ref) {
    const std::string text = row["text"];
    const auto expected = row["ids"].get<std::vector<int64_t>>();
    const Encoding enc = tok.encode_with_spans(text, true);
    if (enc.ids != expected && ++id_mismatches <= 5)
      ADD_FAILURE() << name << ": ids differ for " << json(text).dump() << "\n anchor-rl " << json(enc.ids).dump()
                    << "\n tokenizers " << json(expected).dump();
    const std::string decoded = tok.decode(expected, false), decoded_skip = tok.decode(expected, true);
    if ((decoded != row["decoded"].get<std::string>() || decoded_skip != row["decoded_skip"].get<std::string>()) &&
        ++decode_mismatches <= 5)
      ADD_FAILURE() << name << ": decode differs for " << json(text).dump() << "\n anchor-rl " << json(decoded).dump()
                    << "\n tokenizers " << row["decoded"].dump();
    // Exact round trip (after NFC where the tokenizer normalises); tokens with lstrip / rstrip
    // (gpt2_style's <mask> and [SEP]) swallow whitespace, in `tokenizers` too.
    std::string known;  // the text without the bytes the vocabulary lacks
    for (char c : text)
      if (!is_lacked(c)) known += c;
    const bool drops = known.size() != text.size();
    const std::string round_trip = tok.decode(tok.encode(text, false), false);
    const bool strips = text.find("<mask>") != std::string::npos || text.find("[SEP]") != std::string::npos;
    if (!strips) EXPECT_EQ(round_trip, normalizes ? unicode::nfc(known).text : known);
    // Spans: ordered, disjoint, inside the text, and together they are the text — but for
    // bytes the vocabulary has no token for (dropped, as `tokenizers` drops them).
    std::string rebuilt, dropped;
    size_t last = 0;
    bool ok = enc.spans.size() == enc.ids.size();
    for (const auto& [b, e] : enc.spans) {
      ok = ok && last <= b && b <= e && e <= text.size();
      if (ok) rebuilt += text.substr(b, e - b), dropped += text.substr(last, b - last);
      last = e;
    }
    if (ok) dropped += text.substr(last);
    for (char c : dropped) ok = ok && is_lacked(c);
    // Each token's span holds its own bytes: the tokens decoded are the spans' bytes (without
    // the special tokens the template adds, whose spans are empty), but for a dropped byte that
    // a merge spans (" \x06" + the next character's first byte is one token, as in `tokenizers`).
    if (!normalizes && !strips) {
      const Encoding plain = tok.encode_with_spans(text, false);
      std::string own;
      for (const auto& [b, e] : plain.spans)
        for (char c : text.substr(b, e - b))
          if (!is_lacked(c)) own += c;
      ok = ok && tok.decode(plain.ids, false) == own;
    }
    if ((!ok || rebuilt.size() + dropped.size() != text.size()) && ++span_failures <= 5)
      ADD_FAILURE() << name << ": spans do not cover " << json(text).dump();
    // The offsets of `tokenizers` (made byte offsets by the fixture script) are the spans
    // widened to whole characters (that library reports the enclosing character for a token
    // holding part of one). Compared where that library neither trims them (gpt2_style's
    // post-processor takes the leading space off) nor maps several normalised tokens onto one
    // original character (qwen2_style's NFC): anchor-rl's spans partition the text instead;
    // nor after a dropped byte, where `tokenizers` shifts the offsets of the word's later
    // tokens back by the dropped bytes (the check above holds anchor-rl to the text itself).
    if (!normalizes && !drops && name != "gpt2_style" && row.contains("offsets")) {
      const auto offsets = row["offsets"].get<std::vector<std::pair<size_t, size_t>>>();
      auto continuation = [&](size_t i) { return i < text.size() && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80; };
      std::vector<std::pair<size_t, size_t>> widened = enc.spans;
      for (auto& [b, e] : widened) {
        if (e == b) continue;
        while (b > 0 && continuation(b)) --b;
        while (continuation(e)) ++e;
      }
      if (offsets != widened && ++offset_mismatches <= 5)
        ADD_FAILURE() << name << ": spans differ from tokenizers' offsets for " << json(text).dump()
                      << "\n anchor-rl (widened) " << json(widened).dump() << "\n tokenizers " << json(offsets).dump();
    }
    // Decoding spans: a token that ends inside a character still gets its bytes.
    const Decoding d = tok.decode_with_spans(expected, false);
    EXPECT_EQ(d.text, decoded);
    for (const auto& [b, e] : d.spans)
      if (e > b && (unicode::first_invalid_utf8(d.text.substr(b, e - b)) != std::string::npos)) {
        ++with_partial_chars;
        break;
      }
  }
  EXPECT_EQ(id_mismatches, 0u);
  EXPECT_EQ(decode_mismatches, 0u);
  EXPECT_EQ(span_failures, 0u);
  EXPECT_EQ(offset_mismatches, 0u);
  // The strings do exercise tokens that split a UTF-8 character.
  EXPECT_GT(with_partial_chars, 0u);
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, TokenizerJsonReference,
                         ::testing::Values("gpt2_style", "llama3_style", "qwen2_style", "smollm2"));

// ---- hand-made tokenizers -------------------------------------------------------------------

// A tokenizer.json with the byte-level alphabet, the given extra tokens and merges.
json tiny_tokenizer(const std::vector<std::string>& extra, const std::vector<std::pair<std::string, std::string>>& merges) {
  json vocab = json::object();
  int64_t id = 0;
  for (int b = 0; b < 256; ++b) vocab[byte_level::char_of_byte(static_cast<uint8_t>(b))] = id++;
  for (const auto& t : extra) vocab[t] = id++;
  json m = json::array();
  for (const auto& [a, b] : merges) m.push_back(a + " " + b);
  return json{{"version", "1.0"},
              {"added_tokens", json::array()},
              {"normalizer", nullptr},
              {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
              {"post_processor", nullptr},
              {"decoder", {{"type", "ByteLevel"}}},
              {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", m}}}};
}

Tokenizer load_json(const json& j, const std::string& name) {
  const fs::path dir = test::scratch_dir(name);
  std::ofstream(dir / "tokenizer.json") << j.dump();
  return Tokenizer::load(dir.string());
}

std::vector<std::string> pieces(const Tokenizer& tok, const std::string& text) {
  std::vector<std::string> out;
  for (int64_t id : tok.encode(text, false)) out.push_back(tok.id_to_piece(id));
  return out;
}

TEST(TokenizerJson, MergesApplyLowestRankFirstThenLeftmost) {
  // "abc": rank 0 is "b c", so "bc" forms first and "a b" never applies; then "a bc".
  const Tokenizer tok = load_json(tiny_tokenizer({"ab", "bc", "abc"}, {{"b", "c"}, {"a", "b"}, {"a", "bc"}}), "bpe_rank");
  EXPECT_EQ(pieces(tok, "abc"), (std::vector<std::string>{"abc"}));
  EXPECT_EQ(pieces(tok, "ab"), (std::vector<std::string>{"ab"}));
  // Equal ranks: the leftmost pair merges first: "bcbc" -> "bc" "bc".
  EXPECT_EQ(pieces(tok, "bcbc"), (std::vector<std::string>{"bc", "bc"}));
  // A space joins the next word (GPT-2 regex) and is written 'Ġ'.
  EXPECT_EQ(pieces(tok, "ab ab"), (std::vector<std::string>{"ab", "\xC4\xA0", "ab"}));
}

TEST(TokenizerJson, MergesInPairLayoutAndIgnoreMerges) {
  json j = tiny_tokenizer({"ab", "abc"}, {});
  j["model"]["merges"] = json::array({json::array({"a", "b"})});
  const Tokenizer pairs = load_json(j, "bpe_pairs");
  EXPECT_EQ(pieces(pairs, "abc"), (std::vector<std::string>{"ab", "c"}));
  // ignore_merges: a word that is a vocabulary entry is taken whole, merges or not.
  j["model"]["ignore_merges"] = true;
  const Tokenizer whole = load_json(j, "bpe_ignore");
  EXPECT_EQ(pieces(whole, "abc"), (std::vector<std::string>{"abc"}));
}

TEST(TokenizerJson, AddedTokensMatchLeftmostLongestWithStripRules) {
  json j = tiny_tokenizer({}, {});
  const int64_t n = 256;
  j["added_tokens"] = json::array({
      {{"id", n}, {"content", "<a>"}, {"special", true}, {"normalized", false}},
      {{"id", n + 1}, {"content", "<a><b>"}, {"special", true}, {"normalized", false}},
      {{"id", n + 2}, {"content", "<m>"}, {"special", true}, {"lstrip", true}, {"normalized", false}},
      {{"id", n + 3}, {"content", "<r>"}, {"special", true}, {"rstrip", true}, {"normalized", false}},
      {{"id", n + 4}, {"content", "word"}, {"special", false}, {"single_word", true}, {"normalized", false}},
  });
  const Tokenizer tok = load_json(j, "added_rules");
  EXPECT_EQ(tok.encode("x<a><b>y", false), (std::vector<int64_t>{'x', n + 1, 'y'}));  // longest at the same start
  const Encoding lstrip = tok.encode_with_spans("x  <m>y", false);
  EXPECT_EQ(lstrip.ids, (std::vector<int64_t>{'x', n + 2, 'y'}));  // the spaces belong to <m>
  EXPECT_EQ(lstrip.spans[1], (std::pair<size_t, size_t>{1, 6}));
  EXPECT_EQ(tok.encode("<r>  y", false), (std::vector<int64_t>{n + 3, 'y'}));
  EXPECT_EQ(tok.encode("a word b", false)[2], n + 4);
  EXPECT_EQ(tok.encode("swordfish", false).size(), 9u);  // not a word on its own: plain bytes
  // Special tokens vanish with skip_special; the non-special one stays.
  EXPECT_EQ(tok.decode(tok.encode("<a>word", false), true), "word");
  EXPECT_EQ(tok.decode(tok.encode("<a>word", false), false), "<a>word");
}

TEST(TokenizerJson, AddedTokensSaveAndReloadWithTheirIds) {
  ANCHOR_REQUIRE_FIXTURES();
  Tokenizer tok = Tokenizer::load(tokenizer_fixtures() + "/qwen2_style");
  const int64_t base = tok.vocab_size();
  const int64_t good = tok.add_special_token("<|good|>");
  EXPECT_EQ(good, base);
  EXPECT_EQ(tok.add_special_token("<|good|>"), good);
  const std::string text = "<|good|>It works.<|im_end|>";
  const auto ids = tok.encode(text, false);
  EXPECT_EQ(ids.front(), good);
  EXPECT_EQ(tok.decode(ids, false), text);
  EXPECT_EQ(tok.decode(ids, true), "It works.");
  const fs::path dir = test::scratch_dir("hf_tok_save");
  tok.save(dir.string());
  const Tokenizer back = Tokenizer::load(dir.string());
  EXPECT_EQ(back.vocab_size(), base + 1);
  EXPECT_EQ(back.encode(text, false), ids);
  const json config = json::parse(std::ifstream(dir / "tokenizer_config.json"));
  EXPECT_EQ(config["added_tokens_decoder"][std::to_string(good)]["content"], "<|good|>");
}

TEST(TokenizerJson, SplitBehaviours) {
  auto run = [](const std::string& behavior, bool invert) {
    json j = tiny_tokenizer({}, {});
    j["pre_tokenizer"] = {{"type", "Sequence"},
                          {"pretokenizers",
                           json::array({{{"type", "Split"},
                                         {"pattern", {{"String", "-"}}},
                                         {"behavior", behavior},
                                         {"invert", invert}},
                                        {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}})}};
    const auto pre = make_pre_tokenizer(j["pre_tokenizer"], "test");
    std::vector<std::string> out;
    for (const auto& p : pre->apply(Pieces{unicode::aligned_identity("a-b--c")})) out.push_back(p.text);
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(run("Isolated", false), (V{"a", "-", "b", "-", "-", "c"}));
  EXPECT_EQ(run("Removed", false), (V{"a", "b", "c"}));
  EXPECT_EQ(run("MergedWithPrevious", false), (V{"a-", "b-", "-", "c"}));
  EXPECT_EQ(run("MergedWithNext", false), (V{"a", "-b", "-", "-c"}));
  EXPECT_EQ(run("Contiguous", false), (V{"a", "-", "b", "--", "c"}));
  EXPECT_EQ(run("Removed", true), (V{"-", "-", "-"}));  // each match is its own part, as in tokenizers
}

TEST(TokenizerJson, WhiteSpaceClassIsUnicodeWhiteSpace) {
  // \s must match U+0085 and U+3000 (Unicode White_Space) and not U+200B or U+180E.
  const UnicodeRegex re(R"(\s+)", "test");
  EXPECT_EQ(re.find_all("a\xC2\x85" "b").size(), 1u);
  EXPECT_EQ(re.find_all("a\xE3\x80\x80" "b").size(), 1u);
  EXPECT_EQ(re.find_all("a\xE2\x80\x8B" "b").size(), 0u);
  EXPECT_EQ(re.find_all("a\xE1\xA0\x8E" "b").size(), 0u);
  const UnicodeRegex cls(R"([^\s\p{L}]+)", "test");
  EXPECT_EQ(cls.find_all("ab\xC2\x85" "12").size(), 1u);
  EXPECT_EQ(cls.find_all("ab\xC2\x85" "12")[0], (std::pair<size_t, size_t>{4, 6}));
  EXPECT_EQ(white_space_as_unicode(R"([]\s])", "test"), std::string("[]") + R"(\t-\r\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}])");
}

TEST(TokenizerJson, BadFilesAreNamedErrors) {
  json word_piece = tiny_tokenizer({}, {});
  word_piece["model"]["type"] = "WordPiece";
  EXPECT_THAT(error_of([&] { load_json(word_piece, "bad_wp"); }),
              ::testing::AllOf(HasSubstr("tokenizer.json"), HasSubstr("model type 'WordPiece' is not supported")));
  json unigram = tiny_tokenizer({}, {});
  unigram["model"] = {{"type", "Unigram"}, {"vocab", json::array()}};
  EXPECT_THAT(error_of([&] { load_json(unigram, "bad_uni"); }), HasSubstr("model type 'Unigram' is not supported"));
  EXPECT_THAT(error_of([&] { load_json(tiny_tokenizer({"ab"}, {{"a", "zz"}}), "bad_merge"); }),
              HasSubstr("merges[0] 'a zz' uses 'zz', which is not in the vocabulary"));
  EXPECT_THAT(error_of([&] { load_json(tiny_tokenizer({}, {{"a", "b"}}), "bad_merge2"); }),
              HasSubstr("makes 'ab', which is not in the vocabulary"));
  json meta = tiny_tokenizer({}, {});
  meta["pre_tokenizer"] = {{"type", "Metaspace"}};
  EXPECT_THAT(error_of([&] { load_json(meta, "bad_pre"); }), HasSubstr("pre_tokenizer type 'Metaspace' is not supported"));
  json norm = tiny_tokenizer({}, {});
  norm["normalizer"] = {{"type", "Lowercase"}};
  EXPECT_THAT(error_of([&] { load_json(norm, "bad_norm"); }), HasSubstr("normalizer type 'Lowercase' is not supported"));
  json regex = tiny_tokenizer({}, {});
  regex["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
  EXPECT_THAT(error_of([&] { load_json(regex, "bad_regex"); }), HasSubstr("does not compile"));
  const fs::path dir = test::scratch_dir("bad_json");
  std::ofstream(dir / "tokenizer.json") << "{\"model\": ";
  EXPECT_THAT(error_of([&] { Tokenizer::load(dir.string()); }), HasSubstr("tokenizer.json"));
  const fs::path empty = test::scratch_dir("no_tokenizer");
  EXPECT_THAT(error_of([&] { Tokenizer::load(empty.string()); }), HasSubstr("no tokenizer (expected tokenizer.json"));
  const Tokenizer tok = load_json(tiny_tokenizer({}, {}), "bad_text");
  EXPECT_THAT(error_of([&] { tok.encode("ok \xFF bad", false); }), HasSubstr("not valid UTF-8 (ill-formed byte 0xff at byte 3"));
}

// ---- partial characters: decoding, streaming, spans -------------------------------------------

TEST(TokenizerJson, PartialCharactersDecodeStreamAndSpan) {
  // No merges: "é" (C3 A9) and "日" (E6 97 A5) are one token per byte.
  const Tokenizer tok = load_json(tiny_tokenizer({}, {}), "partial");
  const std::string text = "a\xC3\xA9\xE6\x97\xA5";
  const auto ids = tok.encode(text, false);
  ASSERT_EQ(ids.size(), 6u);
  // Cut inside a character: U+FFFD, like `tokenizers`' lossy decode.
  EXPECT_EQ(tok.decode({ids[0], ids[1]}), "a\xEF\xBF\xBD");
  // Spans of the full decode split characters at byte boundaries; chars_starting_in shows
  // the whole character on its first token.
  const Decoding d = tok.decode_with_spans(ids);
  EXPECT_EQ(d.text, text);
  EXPECT_EQ(d.spans[1], (std::pair<size_t, size_t>{1, 2}));
  EXPECT_EQ(unicode::chars_starting_in(d.text, d.spans[1].first, d.spans[1].second), "\xC3\xA9");
  EXPECT_EQ(unicode::chars_starting_in(d.text, d.spans[2].first, d.spans[2].second), "");
  // A truncated tail: the repaired text has one U+FFFD and the spans point into it.
  const Decoding cut = tok.decode_with_spans({ids[0], ids[3], ids[4]});
  EXPECT_EQ(cut.text, "a\xEF\xBF\xBD");
  EXPECT_EQ(cut.spans[1], (std::pair<size_t, size_t>{1, 1}));
  EXPECT_EQ(cut.spans[2], (std::pair<size_t, size_t>{1, 4}));
  // Streaming prints whole characters only.
  StreamingDecoder stream(tok);
  std::vector<std::string> out;
  for (int64_t id : ids) out.push_back(stream.push(id));
  EXPECT_EQ(out, (std::vector<std::string>{"a", "", "\xC3\xA9", "", "", "\xE6\x97\xA5"}));
  EXPECT_EQ(stream.finish(), "");
  StreamingDecoder unfinished(tok);
  EXPECT_EQ(unfinished.push(ids[3]), "");
  EXPECT_EQ(unfinished.finish(), "\xEF\xBF\xBD");
}

}  // namespace
}  // namespace anchor
