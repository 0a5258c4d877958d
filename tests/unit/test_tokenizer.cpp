#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "tests/unit/test_util.h"
#include "trainer/model/tokenizer.h"

namespace anchor {
namespace {

namespace fs = std::filesystem;
using test::error_of;
using ::testing::HasSubstr;

Tokenizer fixture_tokenizer() { return Tokenizer::from_sentencepiece((fs::path(test::fixtures_dir()) / "tokenizer.model").string()); }

TEST(Tokenizer, MatchesPythonSentencePiece) {
  ANCHOR_REQUIRE_FIXTURES();
  const Tokenizer tok = fixture_tokenizer();
  const auto ref = nlohmann::json::parse(std::ifstream(fs::path(test::fixtures_dir()) / "tokenizer_reference.json"));
  ASSERT_FALSE(ref.empty());
  for (const auto& item : ref) {
    const std::string text = item["text"];
    EXPECT_EQ(tok.encode(text, false), item["ids"].get<std::vector<int64_t>>()) << text;
    EXPECT_EQ(tok.decode(tok.encode(text, true)), item["decoded"].get<std::string>()) << text;
  }
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
}

TEST(Tokenizer, SpansAreOrderedAndCoverTheirText) {
  ANCHOR_REQUIRE_FIXTURES();
  const Tokenizer tok = fixture_tokenizer();
  const std::string text = "Count down: 12 + 7 = 19! Then stop.";
  const Encoding enc = tok.encode_with_spans(text, true);
  ASSERT_EQ(enc.ids.size(), enc.spans.size());
  EXPECT_EQ(enc.spans[0], (std::pair<size_t, size_t>{0, 0}));  // BOS
  std::string rebuilt;
  size_t last = 0;
  for (size_t i = 1; i < enc.spans.size(); ++i) {
    const auto [b, e] = enc.spans[i];
    EXPECT_LE(last, b);
    EXPECT_LE(b, e);
    last = e;
    rebuilt += text.substr(b, e - b);
    // A piece's text (with SentencePiece's space marker) matches its span.
    std::string piece = tok.id_to_piece(enc.ids[i]);
    std::string surface;
    for (size_t k = 0; k < piece.size();) {
      if (piece.compare(k, 3, "\xe2\x96\x81") == 0) { surface += ' '; k += 3; } else { surface += piece[k++]; }
    }
    const std::string span_text = text.substr(b, e - b);
    EXPECT_TRUE(surface == span_text || surface == " " + span_text) << "piece '" << piece << "' span '" << span_text << "'";
  }
  EXPECT_EQ(rebuilt, text);
}

TEST(Tokenizer, AddedSpecialTokensEncodeDecodeAndPersist) {
  ANCHOR_REQUIRE_FIXTURES();
  Tokenizer tok = fixture_tokenizer();
  const int64_t base = tok.vocab_size();
  const int64_t good = tok.add_special_token("<|good|>");
  const int64_t bad = tok.add_special_token("<|bad|>");
  EXPECT_EQ(good, base);
  EXPECT_EQ(bad, base + 1);
  EXPECT_EQ(tok.add_special_token("<|good|>"), good);  // idempotent

  const std::string text = "<|good|>Nice work.<|bad|> wrong";
  const Encoding enc = tok.encode_with_spans(text, false);
  EXPECT_EQ(enc.ids.front(), good);
  EXPECT_EQ(enc.spans.front(), (std::pair<size_t, size_t>{0, 8}));
  EXPECT_NE(std::find(enc.ids.begin(), enc.ids.end(), bad), enc.ids.end());
  // Text between added tokens is encoded on its own, so SentencePiece's normaliser drops the
  // space after <|bad|> (as Hugging Face's legacy Llama tokenizer does).
  EXPECT_EQ(tok.decode(enc.ids, /*skip_special=*/false), "<|good|>Nice work.<|bad|>wrong");
  EXPECT_EQ(tok.decode(enc.ids, /*skip_special=*/true), "Nice work.wrong");

  const fs::path dir = test::scratch_dir("tok_save");
  tok.save(dir.string());
  const Tokenizer back = Tokenizer::load(dir.string());
  EXPECT_EQ(back.vocab_size(), base + 2);
  EXPECT_EQ(back.token_id("<|bad|>"), bad);
  EXPECT_EQ(back.encode(text, true), tok.encode(text, true));
}

TEST(Tokenizer, BadFilesAreNamedErrors) {
  ANCHOR_REQUIRE_FIXTURES();
  const fs::path dir = test::scratch_dir("tok_bad");
  EXPECT_THAT(error_of([&] { Tokenizer::load(dir.string()); }), HasSubstr("no tokenizer (expected tokenizer.json"));
  std::ofstream(dir / "tokenizer.model") << "not a protobuf";
  EXPECT_THAT(error_of([&] { Tokenizer::load(dir.string()); }), HasSubstr("not a valid SentencePiece model"));
  fs::copy_file(fs::path(test::fixtures_dir()) / "tokenizer.model", dir / "tokenizer.model",
                fs::copy_options::overwrite_existing);
  std::ofstream(dir / "tokenizer_config.json") << R"({"added_tokens_decoder": {"500": {"content": "<x>"}}})";
  EXPECT_THAT(error_of([&] { Tokenizer::load(dir.string()); }), HasSubstr("without gaps"));
  const Tokenizer tok = fixture_tokenizer();
  EXPECT_THAT(error_of([&] { tok.decode({100000}); }), HasSubstr("outside the vocabulary"));
}

}  // namespace
}  // namespace anchor
