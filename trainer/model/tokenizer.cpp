#include "trainer/model/tokenizer.h"

#include <filesystem>

#include "trainer/common/error.h"
#include "trainer/model/hf_tokenizer.h"
#include "trainer/model/sentencepiece_tokenizer.h"
#include "trainer/model/unicode_text.h"

namespace anchor {

Tokenizer::Tokenizer(std::unique_ptr<TokenizerBackend> backend) : backend_(std::move(backend)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_sentencepiece(const std::string& model_file) {
  return Tokenizer(std::make_unique<SentencePieceTokenizer>(model_file, ""));
}

Tokenizer Tokenizer::load(const std::string& model_dir) {
  namespace fs = std::filesystem;
  const fs::path dir(model_dir);
  if (fs::exists(dir / "tokenizer.model")) {
    const fs::path config = dir / "tokenizer_config.json";
    return Tokenizer(std::make_unique<SentencePieceTokenizer>((dir / "tokenizer.model").string(),
                                                              fs::exists(config) ? config.string() : ""));
  }
  AR_CHECK(fs::exists(dir / "tokenizer.json"), model_dir,
           ": no tokenizer (expected tokenizer.json, a Hugging Face byte-level BPE tokenizer, or tokenizer.model, a "
           "SentencePiece model)");
  return Tokenizer(std::make_unique<HfTokenizer>(model_dir));
}

Encoding Tokenizer::encode_with_spans(const std::string& text, bool add_special) const {
  const size_t bad = unicode::first_invalid_utf8(text);
  AR_CHECK(bad == std::string::npos, "tokenizer: the text is not valid UTF-8 (ill-formed byte 0x", std::hex,
           static_cast<int>(static_cast<unsigned char>(text[bad])), std::dec, " at byte ", bad, " of ", text.size(), ")");
  return backend_->encode(text, add_special);
}

std::vector<int64_t> Tokenizer::encode(const std::string& text, bool add_special) const {
  return encode_with_spans(text, add_special).ids;
}

Decoding Tokenizer::decode_with_spans(const std::vector<int64_t>& ids, bool skip_special) const {
  Decoding raw = backend_->decode_bytes(ids, skip_special);
  if (unicode::first_invalid_utf8(raw.text) == std::string::npos) return raw;
  // Byte-level tokens that end inside a character, or bytes that form none: the text gets
  // U+FFFD there, and every span moves with the bytes it produced.
  std::vector<size_t> offset;
  Decoding out;
  out.text = unicode::repair_utf8(raw.text, &offset);
  out.spans.reserve(raw.spans.size());
  for (const auto& [a, b] : raw.spans) out.spans.emplace_back(offset[a], offset[b]);
  return out;
}

std::string Tokenizer::decode(const std::vector<int64_t>& ids, bool skip_special) const {
  std::string raw = backend_->decode_bytes(ids, skip_special).text;
  return unicode::first_invalid_utf8(raw) == std::string::npos ? raw : unicode::repair_utf8(raw);
}

StreamingDecoder::StreamingDecoder(const Tokenizer& tokenizer, bool skip_special)
    : tokenizer_(tokenizer), skip_special_(skip_special) {}

std::string StreamingDecoder::push(int64_t id) {
  ids_.push_back(id);
  const std::string raw = tokenizer_.backend_->decode_bytes(ids_, skip_special_).text;
  const std::string text = unicode::repair_utf8(raw.substr(0, unicode::complete_utf8_prefix(raw)));
  if (text.size() <= printed_) return "";
  std::string fresh = text.substr(printed_);
  printed_ = text.size();
  return fresh;
}

std::string StreamingDecoder::finish() {
  const std::string text = tokenizer_.decode(ids_, skip_special_);
  std::string rest = text.size() > printed_ ? text.substr(printed_) : std::string();
  printed_ = text.size();
  return rest;
}

}  // namespace anchor
