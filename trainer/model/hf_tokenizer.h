// Hugging Face tokenizer.json (byte-level BPE) behind the Tokenizer interface: the pipeline of
// the `tokenizers` library — added tokens matched first (leftmost-longest, with lstrip /
// rstrip / single_word), normalizer (NFC or none), pre-tokenizers (pre_tokenizer.h), BPE
// (bpe_model.h) over the byte-level alphabet, post-processor (TemplateProcessing adds e.g.
// Llama 3's <|begin_of_text|>), ByteLevel decoder. Byte spans refer to the original text.
// Torch-free.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "trainer/model/bpe_model.h"
#include "trainer/model/pre_tokenizer.h"
#include "trainer/model/tokenizer.h"

namespace anchor {

class HfTokenizer : public TokenizerBackend {
 public:
  // model_dir holds tokenizer.json and usually tokenizer_config.json (special token names,
  // chat template) and chat_template.jinja.
  explicit HfTokenizer(const std::string& model_dir);

  std::string format() const override { return "tokenizer.json (byte-level BPE)"; }
  Encoding encode(const std::string& text, bool add_special) const override;
  Decoding decode_bytes(const std::vector<int64_t>& ids, bool skip_special) const override;
  int64_t vocab_size() const override { return vocab_size_; }
  int64_t bos_id() const override { return bos_id_; }
  int64_t eos_id() const override { return eos_id_; }
  int64_t pad_id() const override { return pad_id_; }
  std::string id_to_piece(int64_t id) const override;
  int64_t token_id(const std::string& content) const override;
  bool is_special(int64_t id) const override;
  int64_t add_special_token(const std::string& content) override;
  const nlohmann::json& tokenizer_config() const override { return config_; }
  std::string chat_template() const override { return chat_template_; }
  void save(const std::string& model_dir) const override;

 private:
  struct AddedToken {
    int64_t id;
    std::string content;
    bool special = true, normalized = false, lstrip = false, rstrip = false, single_word = false;
    bool from_file = true;  // false: added by anchor-rl (saved into the files on save())
  };
  struct Match {
    size_t begin, end;  // in the searched text, whitespace absorbed by lstrip / rstrip included
    int64_t id;
  };
  std::vector<Match> find_added(const std::string& text, bool normalized) const;
  void rebuild_added_index();
  void encode_plain(const unicode::AlignedText& text, Encoding& out) const;

  std::string source_;        // model_dir/tokenizer.json, for errors
  std::string file_text_;     // tokenizer.json as read (rewritten on save only if tokens were added)
  std::unique_ptr<BpeModel> model_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  bool nfc_ = false;
  std::vector<AddedToken> added_;
  std::unordered_map<int64_t, size_t> added_by_id_;  // id -> index into added_
  // First byte -> indices into added_, longest content first (leftmost-longest matching).
  std::vector<std::vector<size_t>> added_by_first_byte_[2];  // [normalized]
  std::vector<int64_t> prefix_ids_, suffix_ids_;  // TemplateProcessing around a single sequence
  int64_t vocab_size_ = 0;
  int64_t bos_id_ = -1, eos_id_ = -1, pad_id_ = -1;
  nlohmann::json config_ = nlohmann::json::object();  // tokenizer_config.json as read
  std::string chat_template_;
  bool chat_template_from_file_ = false;  // chat_template.jinja rather than tokenizer_config.json
};

}  // namespace anchor
