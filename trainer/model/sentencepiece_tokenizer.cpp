#include "trainer/model/sentencepiece_tokenizer.h"

#include <sentencepiece_processor.h>

#include <algorithm>
#include <filesystem>

#include "trainer/common/error.h"
#include "trainer/common/file_util.h"

namespace anchor {

SentencePieceTokenizer::SentencePieceTokenizer(const std::string& model_file, const std::string& config_file)
    : sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {
  model_bytes_ = read_text_file(model_file);
  const auto status = sp_->LoadFromSerializedProto(model_bytes_);
  AR_CHECK(status.ok(), model_file, ": not a valid SentencePiece model (", status.ToString(), ")");
  piece_count_ = sp_->GetPieceSize();
  if (config_file.empty()) return;

  config_ = read_json_file(config_file);
  AR_CHECK(config_.is_object(), config_file, ": expected a JSON object");
  if (!config_.contains("added_tokens_decoder")) return;
  const auto& decoder = config_.at("added_tokens_decoder");
  AR_CHECK(decoder.is_object(), config_file, ": added_tokens_decoder must be an object {id: {content: ...}}");
  std::vector<std::pair<int64_t, std::string>> extra;
  for (const auto& [key, value] : decoder.items()) {
    int64_t id = -1;
    try {
      id = std::stoll(key);
    } catch (const std::exception&) {
      AR_FAIL(config_file, ": added_tokens_decoder key '", key, "' is not a token id");
    }
    AR_CHECK(value.is_object() && value.contains("content") && value.at("content").is_string(), config_file,
             ": added_tokens_decoder['", key, "'] needs a string 'content'");
    const std::string content = value.at("content").get<std::string>();
    if (id < piece_count_) {
      // Entries for SentencePiece's own pieces (<unk>, <s>, </s>) just restate them.
      AR_CHECK(sp_->IdToPiece(static_cast<int>(id)) == content, config_file, ": added token ", id, " '", content,
               "' disagrees with tokenizer.model, whose piece ", id, " is '", sp_->IdToPiece(static_cast<int>(id)), "'");
      continue;
    }
    extra.emplace_back(id, content);
  }
  std::sort(extra.begin(), extra.end());
  for (const auto& [id, content] : extra) {
    AR_CHECK(id == vocab_size(), config_file, ": added token ids must follow the SentencePiece pieces without gaps: "
             "expected id ", vocab_size(), " for '", content, "', found ", id);
    AR_CHECK(token_id(content) < 0, config_file, ": added token '", content, "' is defined twice");
    added_.push_back(content);
  }
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

int64_t SentencePieceTokenizer::vocab_size() const { return piece_count_ + static_cast<int64_t>(added_.size()); }
int64_t SentencePieceTokenizer::bos_id() const { return sp_->bos_id(); }
int64_t SentencePieceTokenizer::eos_id() const { return sp_->eos_id(); }
int64_t SentencePieceTokenizer::pad_id() const { return sp_->pad_id(); }

std::string SentencePieceTokenizer::id_to_piece(int64_t id) const {
  AR_CHECK(id >= 0 && id < vocab_size(), "token id ", id, " is outside the vocabulary [0, ", vocab_size(), ")");
  if (id < piece_count_) return sp_->IdToPiece(static_cast<int>(id));
  return added_[static_cast<size_t>(id - piece_count_)];
}

int64_t SentencePieceTokenizer::token_id(const std::string& content) const {
  for (size_t i = 0; i < added_.size(); ++i)
    if (added_[i] == content) return piece_count_ + static_cast<int64_t>(i);
  const int id = sp_->PieceToId(content);
  // PieceToId answers unk_id for unknown pieces; only a real <unk> lookup may return it.
  if (id == sp_->unk_id() && content != sp_->IdToPiece(sp_->unk_id())) return -1;
  return id;
}

bool SentencePieceTokenizer::is_special(int64_t id) const {
  if (id >= piece_count_) return id < vocab_size();
  return id >= 0 && sp_->IsControl(static_cast<int>(id));
}

int64_t SentencePieceTokenizer::add_special_token(const std::string& content) {
  AR_CHECK(!content.empty(), "add_special_token: empty token text");
  const int64_t existing = token_id(content);
  if (existing >= 0) return existing;
  added_.push_back(content);
  return vocab_size() - 1;
}

std::string SentencePieceTokenizer::chat_template() const {
  const auto it = config_.find("chat_template");
  return it != config_.end() && it->is_string() ? it->get<std::string>() : std::string();
}

void SentencePieceTokenizer::encode_plain(const std::string& text, size_t base, Encoding& out) const {
  if (text.empty()) return;
  sentencepiece::ImmutableSentencePieceText spt;
  const auto status = sp_->Encode(text, spt.mutable_proto());
  AR_CHECK(status.ok(), "SentencePiece failed to encode text (", status.ToString(), ")");
  size_t last_end = 0;
  for (size_t i = 0; i < spt.pieces_size(); ++i) {
    const auto piece = spt.pieces(static_cast<int>(i));
    // begin/end are byte offsets into `text`; clamp so spans stay ordered and disjoint.
    size_t begin = std::max<size_t>(piece.begin(), last_end);
    size_t end = std::max<size_t>(piece.end(), begin);
    last_end = end;
    out.ids.push_back(piece.id());
    out.spans.emplace_back(base + begin, base + end);
  }
}

Encoding SentencePieceTokenizer::encode(const std::string& text, bool add_special) const {
  Encoding out;
  if (add_special && bos_id() >= 0) {
    out.ids.push_back(bos_id());
    out.spans.emplace_back(0, 0);
  }
  size_t pos = 0;
  while (pos < text.size()) {
    // Earliest added token at or after pos; the longest wins at the same position.
    size_t best_at = std::string::npos, best_len = 0, best_index = 0;
    for (size_t i = 0; i < added_.size(); ++i) {
      const size_t at = text.find(added_[i], pos);
      if (at == std::string::npos) continue;
      if (at < best_at || (at == best_at && added_[i].size() > best_len)) {
        best_at = at;
        best_len = added_[i].size();
        best_index = i;
      }
    }
    const size_t plain_end = best_at == std::string::npos ? text.size() : best_at;
    encode_plain(text.substr(pos, plain_end - pos), pos, out);
    if (best_at == std::string::npos) break;
    out.ids.push_back(piece_count_ + static_cast<int64_t>(best_index));
    out.spans.emplace_back(best_at, best_at + best_len);
    pos = best_at + best_len;
  }
  return out;
}

std::string SentencePieceTokenizer::decode_text(const std::vector<int64_t>& ids, bool skip_special) const {
  std::string out;
  std::vector<int> run;
  auto flush = [&] {
    if (run.empty()) return;
    std::string piece;
    const auto status = sp_->Decode(run, &piece);
    AR_CHECK(status.ok(), "SentencePiece failed to decode (", status.ToString(), ")");
    out += piece;
    run.clear();
  };
  for (int64_t id : ids) {
    AR_CHECK(id >= 0 && id < vocab_size(), "decode: token id ", id, " is outside the vocabulary [0, ", vocab_size(),
             ")");
    if (id < piece_count_) {
      if (skip_special && sp_->IsControl(static_cast<int>(id))) continue;
      run.push_back(static_cast<int>(id));
    } else {
      flush();
      if (!skip_special) out += added_[static_cast<size_t>(id - piece_count_)];
    }
  }
  flush();
  return out;
}

Decoding SentencePieceTokenizer::decode_bytes(const std::vector<int64_t>& ids, bool skip_special) const {
  Decoding out;
  out.text = decode_text(ids, skip_special);
  // Fast path: each token's piece text ("\xe2\x96\x81" -> space, <0xNN> -> byte); SentencePiece
  // drops the leading space of the text, which decode() reports.
  std::string joined;
  std::vector<std::pair<size_t, size_t>> spans;
  static const std::string kSpaceMark = "\xe2\x96\x81";
  for (int64_t id : ids) {
    AR_CHECK(id >= 0 && id < vocab_size(), "decode: token id ", id, " is outside the vocabulary [0, ", vocab_size(),
             ")");
    std::string piece;
    if (id < piece_count_) {
      const int i = static_cast<int>(id);
      if (sp_->IsControl(i)) {
        if (!skip_special) piece = sp_->IdToPiece(i);
      } else if (sp_->IsByte(i)) {
        piece = std::string(1, static_cast<char>(std::stoi(sp_->IdToPiece(i).substr(3, 2), nullptr, 16)));
      } else if (!sp_->IsUnknown(i)) {
        const std::string raw = sp_->IdToPiece(i);
        for (size_t p = 0; p < raw.size();) {
          if (raw.compare(p, kSpaceMark.size(), kSpaceMark) == 0) {
            piece += ' ';
            p += kSpaceMark.size();
          } else {
            piece += raw[p++];
          }
        }
      } else {
        piece = "\x01";  // forces the exact path below
      }
    } else if (!skip_special) {
      piece = added_[static_cast<size_t>(id - piece_count_)];
    }
    spans.emplace_back(joined.size(), joined.size() + piece.size());
    joined += piece;
  }
  if (joined.size() == out.text.size() + 1 && !joined.empty() && joined[0] == ' ' &&
      joined.compare(1, std::string::npos, out.text) == 0) {
    for (auto& [a, b] : spans) {
      a = a > 0 ? a - 1 : 0;
      b = b > 0 ? b - 1 : 0;
    }
    joined.erase(0, 1);
  }
  if (joined == out.text) {
    out.spans = std::move(spans);
    return out;
  }
  // Exact path (e.g. byte pieces SentencePiece replaced by U+FFFD): token i produced the
  // bytes that decoding ids[0..i] adds to ids[0..i-1].
  size_t previous = 0;
  std::vector<int64_t> prefix;
  for (int64_t id : ids) {
    prefix.push_back(id);
    const size_t now = std::max(previous, decode_text(prefix, skip_special).size());
    out.spans.emplace_back(previous, now);
    previous = now;
  }
  return out;
}

void SentencePieceTokenizer::save(const std::string& model_dir) const {
  namespace fs = std::filesystem;
  fs::create_directories(model_dir);
  write_text_file_atomic((fs::path(model_dir) / "tokenizer.model").string(), model_bytes_);
  nlohmann::json config = config_;
  nlohmann::json decoder = nlohmann::json::object();
  auto entry = [](const std::string& content) {
    return nlohmann::json{{"content", content}, {"lstrip", false}, {"normalized", false},
                          {"rstrip", false}, {"single_word", false}, {"special", true}};
  };
  for (int id : {sp_->unk_id(), sp_->bos_id(), sp_->eos_id()})
    if (id >= 0) decoder[std::to_string(id)] = entry(sp_->IdToPiece(id));
  for (size_t i = 0; i < added_.size(); ++i)
    decoder[std::to_string(piece_count_ + static_cast<int64_t>(i))] = entry(added_[i]);
  config["added_tokens_decoder"] = decoder;
  if (!config.contains("tokenizer_class")) config["tokenizer_class"] = "LlamaTokenizer";
  if (bos_id() >= 0) config["bos_token"] = sp_->IdToPiece(static_cast<int>(bos_id()));
  if (eos_id() >= 0) config["eos_token"] = sp_->IdToPiece(static_cast<int>(eos_id()));
  if (!config.contains("add_bos_token")) config["add_bos_token"] = true;
  if (!config.contains("add_eos_token")) config["add_eos_token"] = false;
  write_text_file_atomic((fs::path(model_dir) / "tokenizer_config.json").string(), config.dump(2) + "\n");
}

}  // namespace anchor
