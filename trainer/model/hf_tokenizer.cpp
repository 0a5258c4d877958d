#include "trainer/model/hf_tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <unordered_set>

#include "trainer/common/error.h"
#include "trainer/common/file_util.h"
#include "trainer/model/byte_level.h"

namespace anchor {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A special-token field of tokenizer_config.json: "text", {"content": "text"} or null.
std::string token_text(const json& config, const char* key) {
  const auto it = config.find(key);
  if (it == config.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && it->at("content").is_string()) return it->at("content").get<std::string>();
  return "";
}

// Rust regex's Unicode \w, which the tokenizers library uses for single_word: Alphabetic,
// marks, decimal digits, connector punctuation, joiners.
bool is_word_char(uint32_t c) {
  static const UnicodeRegex word(R"(^[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\x{200C}\x{200D}]$)", "single_word check");
  std::string s;
  unicode::append_utf8(s, c);
  return !word.find_all(s).empty();
}

// Start of the code point that ends right before `pos`.
size_t previous_char(const std::string& text, size_t pos) {
  size_t p = pos - 1;
  while (p > 0 && (static_cast<unsigned char>(text[p]) & 0xC0) == 0x80) --p;
  return p;
}

void check_normalizer(const json& spec, const std::string& source, bool& nfc) {
  if (spec.is_null()) return;
  AR_CHECK(spec.is_object() && spec.contains("type") && spec.at("type").is_string(), source,
           ": normalizer must be an object with a string 'type'");
  const std::string type = spec.at("type").get<std::string>();
  if (type == "NFC") {
    nfc = true;
    return;
  }
  if (type == "Sequence") {
    AR_CHECK(spec.contains("normalizers") && spec.at("normalizers").is_array(), source,
             ": normalizer Sequence needs a 'normalizers' list");
    for (const auto& n : spec.at("normalizers")) check_normalizer(n, source, nfc);
    return;
  }
  AR_FAIL(source, ": normalizer type '", type, "' is not supported (anchor-rl reads byte-level BPE tokenizers: NFC or none)");
}

void check_decoder(const json& spec, const std::string& source) {
  AR_CHECK(spec.is_object() && spec.value("type", std::string()) == "ByteLevel", source,
           ": decoder must be ByteLevel (anchor-rl reads byte-level BPE tokenizers), got ",
           spec.is_null() ? std::string("null") : spec.dump().substr(0, 200));
}

}  // namespace

HfTokenizer::HfTokenizer(const std::string& model_dir) {
  source_ = (fs::path(model_dir) / "tokenizer.json").string();
  file_text_ = read_text_file(source_);
  const json j = read_json_file(source_);
  AR_CHECK(j.is_object(), source_, ": expected a JSON object");
  AR_CHECK(j.contains("model"), source_, ": no 'model' section");
  model_ = std::make_unique<BpeModel>(j.at("model"), source_);
  check_normalizer(j.value("normalizer", json()), source_, nfc_);
  pre_tokenizer_ = make_pre_tokenizer(j.value("pre_tokenizer", json()), source_);
  AR_CHECK(pre_tokenizer_->maps_bytes(), source_,
           ": the pre-tokenizer does not end in ByteLevel; anchor-rl reads byte-level BPE tokenizers only");
  check_decoder(j.value("decoder", json()), source_);

  vocab_size_ = model_->vocab_size();
  if (j.contains("added_tokens") && !j.at("added_tokens").is_null()) {
    AR_CHECK(j.at("added_tokens").is_array(), source_, ": added_tokens must be a list");
    for (const auto& t : j.at("added_tokens")) {
      AR_CHECK(t.is_object() && t.contains("id") && t.at("id").is_number_integer() && t.contains("content") &&
                   t.at("content").is_string() && !t.at("content").get<std::string>().empty(),
               source_, ": added_tokens entry ", t.dump().substr(0, 200), " needs an integer 'id' and a non-empty 'content'");
      AddedToken a;
      a.id = t.at("id").get<int64_t>();
      a.content = t.at("content").get<std::string>();
      a.special = t.value("special", false);
      a.normalized = t.value("normalized", !a.special);
      a.lstrip = t.value("lstrip", false);
      a.rstrip = t.value("rstrip", false);
      a.single_word = t.value("single_word", false);
      AR_CHECK(a.id >= 0, source_, ": added token '", a.content, "' has a negative id");
      for (const AddedToken& b : added_)
        AR_CHECK(b.id != a.id, source_, ": added tokens '", b.content, "' and '", a.content, "' share id ", a.id);
      vocab_size_ = std::max(vocab_size_, a.id + 1);
      added_.push_back(a);
    }
  }
  rebuild_added_index();
  for (int64_t id = 0; id < vocab_size_; ++id)
    AR_CHECK(model_->has_id(id) || added_by_id_.count(id), source_, ": token id ", id,
             " is neither in model.vocab nor in added_tokens (ids must have no gaps)");

  // Post-processor: TemplateProcessing's single-sequence template; ByteLevel changes offsets only.
  std::vector<json> processors;
  const json post = j.value("post_processor", json());
  if (post.is_object() && post.value("type", std::string()) == "Sequence")
    for (const auto& p : post.value("processors", json::array())) processors.push_back(p);
  else if (!post.is_null()) processors.push_back(post);
  for (const json& p : processors) {
    const std::string type = p.is_object() ? p.value("type", std::string()) : std::string();
    if (type == "ByteLevel") continue;
    AR_CHECK(type == "TemplateProcessing", source_, ": post_processor type '", type,
             "' is not supported (ByteLevel, TemplateProcessing)");
    AR_CHECK(prefix_ids_.empty() && suffix_ids_.empty(), source_, ": more than one TemplateProcessing post_processor");
    bool seen_sequence = false;
    for (const auto& item : p.value("single", json::array())) {
      if (item.contains("Sequence")) {
        AR_CHECK(!seen_sequence, source_, ": post_processor.single holds more than one sequence");
        seen_sequence = true;
        continue;
      }
      AR_CHECK(item.contains("SpecialToken") && item.at("SpecialToken").contains("id"), source_,
               ": post_processor.single entry ", item.dump(), " is neither Sequence nor SpecialToken");
      const std::string name = item.at("SpecialToken").at("id").get<std::string>();
      const json& specials = p.value("special_tokens", json::object());
      AR_CHECK(specials.contains(name) && specials.at(name).contains("ids"), source_, ": post_processor special token '",
               name, "' is not listed in special_tokens");
      for (const auto& id : specials.at(name).at("ids")) {
        AR_CHECK(id.is_number_integer() && id.get<int64_t>() >= 0 && id.get<int64_t>() < vocab_size_, source_,
                 ": post_processor special token '", name, "' has id ", id.dump(), " outside the vocabulary");
        (seen_sequence ? suffix_ids_ : prefix_ids_).push_back(id.get<int64_t>());
      }
    }
    AR_CHECK(seen_sequence, source_, ": post_processor.single has no $A sequence");
  }

  const fs::path config_path = fs::path(model_dir) / "tokenizer_config.json";
  if (fs::exists(config_path)) {
    config_ = read_json_file(config_path.string());
    AR_CHECK(config_.is_object(), config_path.string(), ": expected a JSON object");
  }
  auto special_id = [&](const char* key) -> int64_t {
    const std::string text = token_text(config_, key);
    if (text.empty()) return -1;
    const int64_t id = token_id(text);
    AR_CHECK(id >= 0, config_path.string(), ": ", key, " '", text, "' is not a token of ", source_);
    return id;
  };
  bos_id_ = special_id("bos_token");
  eos_id_ = special_id("eos_token");
  pad_id_ = special_id("pad_token");

  const fs::path jinja = fs::path(model_dir) / "chat_template.jinja";
  if (fs::exists(jinja)) {
    chat_template_ = read_text_file(jinja.string());
    chat_template_from_file_ = true;
  } else if (config_.contains("chat_template")) {
    const json& t = config_.at("chat_template");
    if (t.is_string()) {
      chat_template_ = t.get<std::string>();
    } else if (t.is_array()) {  // [{name, template}]: the "default" one
      for (const auto& named : t)
        if (named.value("name", std::string()) == "default") chat_template_ = named.value("template", std::string());
    }
  }
}

void HfTokenizer::rebuild_added_index() {
  added_by_id_.clear();
  for (size_t i = 0; i < added_.size(); ++i) added_by_id_[added_[i].id] = i;
  for (auto& index : added_by_first_byte_) index.assign(256, {});
  for (size_t i = 0; i < added_.size(); ++i)
    added_by_first_byte_[added_[i].normalized ? 1 : 0][static_cast<unsigned char>(added_[i].content[0])].push_back(i);
  for (auto& index : added_by_first_byte_)
    for (auto& bucket : index)
      std::stable_sort(bucket.begin(), bucket.end(),
                       [&](size_t a, size_t b) { return added_[a].content.size() > added_[b].content.size(); });
}

std::vector<HfTokenizer::Match> HfTokenizer::find_added(const std::string& text, bool normalized) const {
  std::vector<Match> out;
  const auto& index = added_by_first_byte_[normalized ? 1 : 0];
  size_t last_end = 0;
  for (size_t i = 0; i < text.size();) {
    const auto& bucket = index[static_cast<unsigned char>(text[i])];
    const AddedToken* found = nullptr;
    for (size_t k : bucket)
      if (text.compare(i, added_[k].content.size(), added_[k].content) == 0) {
        found = &added_[k];  // leftmost, then longest
        break;
      }
    if (!found) {
      ++i;
      continue;
    }
    size_t b = i, e = i + found->content.size();
    i = e;
    if (found->single_word) {
      const bool left_ok = b == 0 || !is_word_char(unicode::decode_code_point(text, previous_char(text, b), nullptr));
      const bool right_ok = e == text.size() || !is_word_char(unicode::decode_code_point(text, e, nullptr));
      if (!left_ok || !right_ok) continue;  // not a word on its own: the text stays plain
    }
    if (found->lstrip) {
      while (b > last_end) {
        const size_t p = previous_char(text, b);
        if (!unicode::is_white_space(unicode::decode_code_point(text, p, nullptr))) break;
        b = p;
      }
    }
    if (found->rstrip) {
      while (e < text.size()) {
        size_t length = 1;
        if (!unicode::is_white_space(unicode::decode_code_point(text, e, &length))) break;
        e += length;
      }
      i = e;
    }
    out.push_back(Match{b, e, found->id});
    last_end = e;
  }
  return out;
}

void HfTokenizer::encode_plain(const unicode::AlignedText& text, Encoding& out) const {
  // Added tokens declared "normalized" are matched on the normalised text.
  auto slice = [&](size_t b, size_t e) {
    unicode::AlignedText s;
    s.text = text.text.substr(b, e - b);
    s.origin.assign(text.origin.begin() + static_cast<long>(b), text.origin.begin() + static_cast<long>(e));
    return s;
  };
  size_t last_end = out.spans.empty() ? 0 : out.spans.back().second;
  auto emit = [&](int64_t id, size_t begin, size_t end) {
    begin = std::max(begin, last_end);
    end = std::max(end, begin);
    last_end = end;
    out.ids.push_back(id);
    out.spans.emplace_back(begin, end);
  };
  auto encode_words = [&](const unicode::AlignedText& part) {
    std::vector<int64_t> ids;
    std::vector<BpeModel::CharRange> ranges;
    for (const unicode::AlignedText& piece : pre_tokenizer_->apply(Pieces{part})) {
      ids.clear();
      ranges.clear();
      model_->tokenize(byte_level::encode(piece.text), ids, ranges);
      // Byte-level: alphabet character k is byte k of the piece. A byte the vocabulary lacks
      // was dropped; the ranges skip it, so later tokens keep their own bytes.
      for (size_t t = 0; t < ids.size(); ++t)
        emit(ids[t], piece.origin[ranges[t].first].first, piece.origin[ranges[t].second - 1].second);
    }
  };
  size_t pos = 0;
  for (const Match& m : find_added(text.text, true)) {
    if (m.begin > pos) encode_words(slice(pos, m.begin));
    const size_t begin = text.origin[m.begin].first, end = text.origin[m.end - 1].second;
    emit(m.id, begin, end);
    pos = m.end;
  }
  if (pos < text.text.size()) encode_words(slice(pos, text.text.size()));
}

Encoding HfTokenizer::encode(const std::string& text, bool add_special) const {
  Encoding out;
  if (add_special)
    for (int64_t id : prefix_ids_) {
      out.ids.push_back(id);
      out.spans.emplace_back(0, 0);
    }
  auto plain = [&](size_t b, size_t e) {
    if (e <= b) return;
    unicode::AlignedText part = nfc_ ? unicode::nfc(text.substr(b, e - b)) : unicode::aligned_identity(text.substr(b, e - b));
    for (auto& [x, y] : part.origin) {
      x += b;
      y += b;
    }
    encode_plain(part, out);
  };
  size_t pos = 0;
  for (const Match& m : find_added(text, false)) {
    plain(pos, m.begin);
    const size_t last_end = out.spans.empty() ? 0 : out.spans.back().second;
    out.ids.push_back(m.id);
    out.spans.emplace_back(std::max(m.begin, last_end), std::max(m.end, last_end));
    pos = m.end;
  }
  plain(pos, text.size());
  if (add_special)
    for (int64_t id : suffix_ids_) {
      out.ids.push_back(id);
      out.spans.emplace_back(text.size(), text.size());
    }
  return out;
}

Decoding HfTokenizer::decode_bytes(const std::vector<int64_t>& ids, bool skip_special) const {
  Decoding out;
  for (int64_t id : ids) {
    AR_CHECK(id >= 0 && id < vocab_size_, "decode: token id ", id, " is outside the vocabulary [0, ", vocab_size_, ")");
    const size_t start = out.text.size();
    const auto it = added_by_id_.find(id);
    const AddedToken* added = it == added_by_id_.end() ? nullptr : &added_[it->second];
    const std::string& token = added ? added->content : model_->id_to_token(id);
    if (!(added && skip_special && added->special)) {
      // As the tokenizers ByteLevel decoder: alphabet characters become bytes; a token with
      // other characters (an added token like " [IND]") is taken as its UTF-8 text.
      const auto bytes = byte_level::decode(token);
      out.text += bytes ? *bytes : token;
    }
    out.spans.emplace_back(start, out.text.size());
  }
  return out;
}

std::string HfTokenizer::id_to_piece(int64_t id) const {
  AR_CHECK(id >= 0 && id < vocab_size_, "token id ", id, " is outside the vocabulary [0, ", vocab_size_, ")");
  const auto it = added_by_id_.find(id);
  return it != added_by_id_.end() ? added_[it->second].content : model_->id_to_token(id);
}

int64_t HfTokenizer::token_id(const std::string& content) const {
  for (const AddedToken& a : added_)
    if (a.content == content) return a.id;
  return model_->token_to_id(content);
}

bool HfTokenizer::is_special(int64_t id) const {
  const auto it = added_by_id_.find(id);
  return it != added_by_id_.end() && added_[it->second].special;
}

int64_t HfTokenizer::add_special_token(const std::string& content) {
  AR_CHECK(!content.empty(), "add_special_token: empty token text");
  const int64_t existing = token_id(content);
  if (existing >= 0) return existing;
  AddedToken a;
  a.id = vocab_size_++;
  a.content = content;
  a.from_file = false;
  added_.push_back(a);
  rebuild_added_index();
  return a.id;
}

void HfTokenizer::save(const std::string& model_dir) const {
  fs::create_directories(model_dir);
  auto entry = [](const AddedToken& a) {
    return json{{"content", a.content}, {"lstrip", a.lstrip}, {"normalized", a.normalized},
                {"rstrip", a.rstrip},   {"single_word", a.single_word}, {"special", a.special}};
  };
  const bool grew = std::any_of(added_.begin(), added_.end(), [](const AddedToken& a) { return !a.from_file; });
  if (!grew) {
    write_text_file_atomic((fs::path(model_dir) / "tokenizer.json").string(), file_text_);
  } else {
    json j = json::parse(file_text_);
    if (!j.contains("added_tokens") || !j.at("added_tokens").is_array()) j["added_tokens"] = json::array();
    for (const AddedToken& a : added_) {
      if (a.from_file) continue;
      json e = entry(a);
      e["id"] = a.id;
      j["added_tokens"].push_back(e);
    }
    write_text_file_atomic((fs::path(model_dir) / "tokenizer.json").string(), j.dump(2) + "\n");
  }
  json config = config_;
  if (!config.contains("tokenizer_class")) config["tokenizer_class"] = "PreTrainedTokenizerFast";
  json decoder = config.contains("added_tokens_decoder") && config.at("added_tokens_decoder").is_object()
                     ? config.at("added_tokens_decoder")
                     : json::object();
  for (const AddedToken& a : added_) decoder[std::to_string(a.id)] = entry(a);
  config["added_tokens_decoder"] = decoder;
  if (chat_template_from_file_) {
    write_text_file_atomic((fs::path(model_dir) / "chat_template.jinja").string(), chat_template_);
  }
  write_text_file_atomic((fs::path(model_dir) / "tokenizer_config.json").string(), config.dump(2) + "\n");
}

}  // namespace anchor
