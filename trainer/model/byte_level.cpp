#include "trainer/model/byte_level.h"

#include <array>
#include <unordered_map>

#include "trainer/model/unicode_text.h"

namespace anchor::byte_level {
namespace {

struct Alphabet {
  std::array<std::string, 256> char_of;
  std::unordered_map<uint32_t, uint8_t> byte_of;  // code point -> byte
  Alphabet() {
    uint32_t next_extra = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const uint32_t c = printable ? b : next_extra++;
      unicode::append_utf8(char_of[b], c);
      byte_of[c] = static_cast<uint8_t>(b);
    }
  }
};

const Alphabet& alphabet() {
  static const Alphabet a;
  return a;
}

}  // namespace

const std::string& char_of_byte(uint8_t byte) { return alphabet().char_of[byte]; }

std::string encode(const std::string& bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char ch : bytes) out += char_of_byte(static_cast<uint8_t>(ch));
  return out;
}

std::optional<std::string> decode(const std::string& text) {
  const Alphabet& a = alphabet();
  std::string out;
  out.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    size_t length = 1;
    const uint32_t c = unicode::decode_code_point(text, pos, &length);
    const auto it = a.byte_of.find(c);
    if (it == a.byte_of.end()) return std::nullopt;
    out += static_cast<char>(it->second);
    pos += length;
  }
  return out;
}

}  // namespace anchor::byte_level
