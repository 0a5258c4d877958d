// Tokenizer: the SentencePiece library plus Hugging Face-style added special tokens
// (e.g. <|good|>, <|bad|>) that extend the vocabulary after the SentencePiece pieces and are
// saved with the checkpoint in tokenizer_config.json ("added_tokens_decoder").
// Added tokens are matched verbatim in the text before SentencePiece sees it.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace anchor {

struct Encoding {
  std::vector<int64_t> ids;
  // Byte span [first, second) of each token in the input text; BOS gets an empty span at 0.
  // Spans of consecutive tokens never overlap; a token that only carries SentencePiece's
  // dummy-prefix space has an empty span.
  std::vector<std::pair<size_t, size_t>> spans;
};

struct Decoding {
  std::string text;  // == Tokenizer::decode(ids, skip_special)
  // Byte span [first, second) of each token in `text` (empty for skipped or absorbed tokens).
  std::vector<std::pair<size_t, size_t>> spans;
};

class Tokenizer {
 public:
  // Reads model_dir/tokenizer.model and, if present, model_dir/tokenizer_config.json.
  static Tokenizer load(const std::string& model_dir);
  // From a SentencePiece model file alone.
  static Tokenizer from_sentencepiece(const std::string& model_file);
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  Encoding encode_with_spans(const std::string& text, bool add_bos) const;
  std::vector<int64_t> encode(const std::string& text, bool add_bos) const;
  // skip_special drops control tokens (BOS/EOS/...) and added special tokens.
  std::string decode(const std::vector<int64_t>& ids, bool skip_special = true) const;

  // decode() plus which bytes of the text each token produced (credit maps of sampled text).
  Decoding decode_with_spans(const std::vector<int64_t>& ids, bool skip_special = true) const;

  int64_t vocab_size() const;  // SentencePiece pieces + added tokens
  int64_t bos_id() const;
  int64_t eos_id() const;
  int64_t pad_id() const;     // -1 when the model defines none
  std::string id_to_piece(int64_t id) const;
  // Adds a special token (no-op returning the existing id if present); its id is vocab_size().
  int64_t add_special_token(const std::string& content);
  int64_t token_id(const std::string& content) const;  // added token or piece; -1 if unknown
  const std::vector<std::string>& added_tokens() const { return added_; }

  // Writes tokenizer.model and tokenizer_config.json (added tokens, BOS/EOS names) to model_dir.
  void save(const std::string& model_dir) const;

 private:
  Tokenizer();
  void encode_plain(const std::string& text, size_t base, Encoding& out) const;

  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  std::string model_bytes_;                 // serialized SentencePiece model, for save()
  std::vector<std::string> added_;          // id = piece_count + index
  int64_t piece_count_ = 0;
  nlohmann::json config_ = nlohmann::json::object();  // tokenizer_config.json as read
};

}  // namespace anchor
