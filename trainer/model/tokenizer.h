// Tokenizer: one interface over the tokenizer formats of released models, chosen by the files
// in a model directory:
//   tokenizer.model  -> SentencePiece (the library), with added special tokens kept in
//                       tokenizer_config.json (sentencepiece_tokenizer.h)
//   tokenizer.json   -> Hugging Face byte-level BPE: GPT-2 / SmolLM2, Llama 3, Qwen2 / Qwen3
//                       (hf_tokenizer.h)
// tokenizer.model wins when both exist (SentencePiece models converted to tokenizer.json keep
// the original next to it).
//
// Byte-level tokens often hold part of a multi-byte UTF-8 character. Decoded text is always
// valid UTF-8 (ill-formed byte runs become U+FFFD, as in the `tokenizers` library), spans are
// byte ranges of that text and may split a character between two tokens (display a token with
// unicode::chars_starting_in), and StreamingDecoder prints only whole characters.
// Torch-free.
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace anchor {

struct Encoding {
  std::vector<int64_t> ids;
  // Byte span [first, second) of each token in the input text. Spans are ordered and never
  // overlap; tokens the text does not contain (BOS, SentencePiece's dummy-prefix space, a
  // prefix space) have an empty span at the position where they stand.
  std::vector<std::pair<size_t, size_t>> spans;
};

struct Decoding {
  std::string text;  // == Tokenizer::decode(ids, skip_special), valid UTF-8
  // Byte span [first, second) of each token in `text` (empty for skipped or absorbed tokens).
  std::vector<std::pair<size_t, size_t>> spans;
};

// What differs between tokenizer formats. encode() receives valid UTF-8; decode_bytes() may
// return ill-formed UTF-8 (the Tokenizer repairs it).
class TokenizerBackend {
 public:
  virtual ~TokenizerBackend() = default;
  virtual std::string format() const = 0;
  virtual Encoding encode(const std::string& text, bool add_special) const = 0;
  virtual Decoding decode_bytes(const std::vector<int64_t>& ids, bool skip_special) const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual int64_t bos_id() const = 0;
  virtual int64_t eos_id() const = 0;
  virtual int64_t pad_id() const = 0;
  virtual std::string id_to_piece(int64_t id) const = 0;
  virtual int64_t token_id(const std::string& content) const = 0;
  virtual bool is_special(int64_t id) const = 0;
  virtual int64_t add_special_token(const std::string& content) = 0;
  virtual const nlohmann::json& tokenizer_config() const = 0;
  virtual std::string chat_template() const = 0;
  virtual void save(const std::string& model_dir) const = 0;
};

class Tokenizer {
 public:
  // Reads a model directory (see above). A directory with neither file is an error.
  static Tokenizer load(const std::string& model_dir);
  // From a SentencePiece model file alone.
  static Tokenizer from_sentencepiece(const std::string& model_file);
  explicit Tokenizer(std::unique_ptr<TokenizerBackend> backend);
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // add_special: add what the format adds around one sequence — BOS for SentencePiece models,
  // the post-processor's tokens for tokenizer.json (Llama 3: <|begin_of_text|>; SmolLM2 and
  // Qwen: nothing). Text that is not valid UTF-8 is an error naming the byte offset.
  Encoding encode_with_spans(const std::string& text, bool add_special) const;
  std::vector<int64_t> encode(const std::string& text, bool add_special) const;
  // skip_special drops control tokens (BOS/EOS/...) and added special tokens.
  std::string decode(const std::vector<int64_t>& ids, bool skip_special = true) const;
  // decode() plus which bytes of the text each token produced (credit maps of sampled text).
  Decoding decode_with_spans(const std::vector<int64_t>& ids, bool skip_special = true) const;

  std::string format() const { return backend_->format(); }
  int64_t vocab_size() const { return backend_->vocab_size(); }  // base vocabulary + added tokens
  int64_t bos_id() const { return backend_->bos_id(); }  // -1 when the tokenizer defines none
  int64_t eos_id() const { return backend_->eos_id(); }
  int64_t pad_id() const { return backend_->pad_id(); }
  // An id for padded positions, which are masked out: pad, else EOS, else 0 (SentencePiece
  // models may define no pad token).
  int64_t padding_id() const { return pad_id() >= 0 ? pad_id() : std::max<int64_t>(eos_id(), 0); }
  std::string id_to_piece(int64_t id) const { return backend_->id_to_piece(id); }
  // Whether decode(skip_special = true) drops this id.
  bool is_special(int64_t id) const { return backend_->is_special(id); }
  // Adds a special token (no-op returning the existing id if present); its id is vocab_size().
  int64_t add_special_token(const std::string& content) { return backend_->add_special_token(content); }
  int64_t token_id(const std::string& content) const { return backend_->token_id(content); }  // -1 if unknown
  // tokenizer_config.json as read ({} when absent).
  const nlohmann::json& tokenizer_config() const { return backend_->tokenizer_config(); }
  // The model's Jinja chat template (tokenizer_config.json "chat_template" or
  // chat_template.jinja); "" when it ships none.
  std::string chat_template() const { return backend_->chat_template(); }

  // Writes the tokenizer files (and the added tokens) so that transformers loads them.
  void save(const std::string& model_dir) const { backend_->save(model_dir); }

 private:
  friend class StreamingDecoder;
  std::unique_ptr<TokenizerBackend> backend_;
};

// Incremental detokenisation for streaming output: push() ids one at a time and get back the
// text that became final — whole characters only, so a character split across byte-level
// tokens is printed once its last byte arrives. The concatenation of every push() and
// finish() equals Tokenizer::decode of all ids.
class StreamingDecoder {
 public:
  explicit StreamingDecoder(const Tokenizer& tokenizer, bool skip_special = true);
  std::string push(int64_t id);
  std::string finish();  // whatever is left (an unfinished character becomes U+FFFD)

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_;
  std::vector<int64_t> ids_;
  size_t printed_ = 0;  // bytes of decode(ids_) already returned
};

}  // namespace anchor
