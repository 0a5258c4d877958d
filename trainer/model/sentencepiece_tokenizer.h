// SentencePiece (tokenizer.model, through the SentencePiece library) behind the Tokenizer
// interface, plus Hugging Face-style added special tokens (e.g. <|good|>, <|bad|>) that extend
// the vocabulary after the SentencePiece pieces and are saved in tokenizer_config.json
// ("added_tokens_decoder"). Added tokens are matched verbatim in the text before SentencePiece
// sees it. Torch-free.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "trainer/model/tokenizer.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace anchor {

class SentencePieceTokenizer : public TokenizerBackend {
 public:
  // model_file: a serialized SentencePiece model; config_file: tokenizer_config.json or "".
  SentencePieceTokenizer(const std::string& model_file, const std::string& config_file);
  ~SentencePieceTokenizer() override;

  std::string format() const override { return "sentencepiece"; }
  Encoding encode(const std::string& text, bool add_special) const override;
  Decoding decode_bytes(const std::vector<int64_t>& ids, bool skip_special) const override;
  int64_t vocab_size() const override;
  int64_t bos_id() const override;
  int64_t eos_id() const override;
  int64_t pad_id() const override;
  std::string id_to_piece(int64_t id) const override;
  int64_t token_id(const std::string& content) const override;
  bool is_special(int64_t id) const override;
  int64_t add_special_token(const std::string& content) override;
  const nlohmann::json& tokenizer_config() const override { return config_; }
  std::string chat_template() const override;
  void save(const std::string& model_dir) const override;

 private:
  std::string decode_text(const std::vector<int64_t>& ids, bool skip_special) const;
  void encode_plain(const std::string& text, size_t base, Encoding& out) const;

  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  std::string model_bytes_;                 // serialized SentencePiece model, for save()
  std::vector<std::string> added_;          // id = piece_count + index
  int64_t piece_count_ = 0;
  nlohmann::json config_ = nlohmann::json::object();  // tokenizer_config.json as read
};

}  // namespace anchor
