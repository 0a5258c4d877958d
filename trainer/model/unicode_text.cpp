#include "trainer/model/unicode_text.h"

#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include "trainer/common/error.h"

namespace anchor::unicode {
namespace {

// Length of the well-formed prefix of the character starting at bytes[pos] (Unicode Table 3-7)
// and whether that prefix is a whole character. An ill-formed lead byte gives {1, false}
// (one replacement); a truncated but well-formed start gives {k, false} with k bytes.
std::pair<size_t, bool> scan_character(const std::string& bytes, size_t pos) {
  const auto b0 = static_cast<unsigned char>(bytes[pos]);
  if (b0 < 0x80) return {1, true};
  size_t need = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;  // <= U+10FFFF
  } else {
    return {1, false};
  }
  size_t k = 1;
  for (; k < need && pos + k < bytes.size(); ++k) {
    const auto b = static_cast<unsigned char>(bytes[pos + k]);
    const unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (b < l || b > h) return {k, false};
  }
  return {k, k == need};
}

}  // namespace

size_t first_invalid_utf8(const std::string& text) {
  for (size_t pos = 0; pos < text.size();) {
    const auto [length, whole] = scan_character(text, pos);
    if (!whole) return pos;
    pos += length;
  }
  return std::string::npos;
}

std::string repair_utf8(const std::string& bytes, std::vector<size_t>* offset_map) {
  static const std::string kReplacement = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(bytes.size());
  if (offset_map) offset_map->assign(bytes.size() + 1, 0);
  for (size_t pos = 0; pos < bytes.size();) {
    const auto [length, whole] = scan_character(bytes, pos);
    if (offset_map)
      for (size_t k = 0; k < length; ++k) (*offset_map)[pos + k] = out.size();
    if (whole) out.append(bytes, pos, length);
    else out += kReplacement;
    pos += length;
  }
  if (offset_map) offset_map->back() = out.size();
  return out;
}

size_t complete_utf8_prefix(const std::string& bytes) {
  size_t pos = 0;
  while (pos < bytes.size()) {
    const auto [length, whole] = scan_character(bytes, pos);
    // A well-formed start cut off by the end of the stream may still be completed.
    const auto lead = static_cast<unsigned char>(bytes[pos]);
    if (!whole && pos + length == bytes.size() && lead >= 0xC2 && lead <= 0xF4) return pos;
    pos += length;
  }
  return pos;
}

std::string chars_starting_in(const std::string& text, size_t begin, size_t end) {
  std::string out;
  end = std::min(end, text.size());
  for (size_t pos = begin; pos < end; ++pos) {
    const auto b = static_cast<unsigned char>(text[pos]);
    if ((b & 0xC0) == 0x80) continue;  // a continuation byte: its character started earlier
    size_t length = 1;
    decode_code_point(text, pos, &length);
    out.append(text, pos, length);
    pos += length - 1;
  }
  return out;
}

AlignedText aligned_identity(const std::string& text, size_t base) {
  AlignedText out;
  out.text = text;
  out.origin.resize(text.size());
  for (size_t i = 0; i < text.size(); ++i) out.origin[i] = {base + i, base + i + 1};
  return out;
}

uint32_t decode_code_point(const std::string& text, size_t pos, size_t* length) {
  const auto b0 = static_cast<unsigned char>(text[pos]);
  size_t n = b0 < 0x80 ? 1 : b0 < 0xE0 ? 2 : b0 < 0xF0 ? 3 : 4;
  if (pos + n > text.size()) n = text.size() - pos;
  uint32_t c = n == 1 ? b0 : n == 2 ? (b0 & 0x1Fu) : n == 3 ? (b0 & 0x0Fu) : (b0 & 0x07u);
  for (size_t k = 1; k < n; ++k) c = (c << 6) | (static_cast<unsigned char>(text[pos + k]) & 0x3Fu);
  if (length) *length = n;
  return c;
}

void append_utf8(std::string& out, uint32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

bool is_white_space(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

namespace {

const UNormalizer2* nfc_instance() {
  UErrorCode status = U_ZERO_ERROR;
  const UNormalizer2* n = unorm2_getNFCInstance(&status);
  AR_CHECK(U_SUCCESS(status), "ICU: cannot load the NFC normaliser (", u_errorName(status), ")");
  return n;
}

std::u16string to_utf16(const std::string& text) {
  std::u16string out(text.size() + 1, u'\0');
  int32_t length = 0;
  UErrorCode status = U_ZERO_ERROR;
  u_strFromUTF8(reinterpret_cast<UChar*>(out.data()), static_cast<int32_t>(out.size()), &length, text.data(),
                static_cast<int32_t>(text.size()), &status);
  AR_CHECK(U_SUCCESS(status), "ICU: text is not valid UTF-8 (", u_errorName(status), ")");
  out.resize(static_cast<size_t>(length));
  return out;
}

std::string to_utf8(const std::u16string& text) {
  std::string out(text.size() * 3 + 1, '\0');
  int32_t length = 0;
  UErrorCode status = U_ZERO_ERROR;
  u_strToUTF8(out.data(), static_cast<int32_t>(out.size()), &length, reinterpret_cast<const UChar*>(text.data()),
              static_cast<int32_t>(text.size()), &status);
  AR_CHECK(U_SUCCESS(status), "ICU: cannot convert to UTF-8 (", u_errorName(status), ")");
  out.resize(static_cast<size_t>(length));
  return out;
}

}  // namespace

AlignedText nfc(const std::string& text) {
  bool ascii = true;
  for (char ch : text) ascii = ascii && static_cast<unsigned char>(ch) < 0x80;
  if (ascii) return aligned_identity(text);  // ASCII is always NFC
  const UNormalizer2* norm = nfc_instance();
  const std::u16string wide = to_utf16(text);
  UErrorCode status = U_ZERO_ERROR;
  const UBool normalized = unorm2_isNormalized(norm, reinterpret_cast<const UChar*>(wide.data()),
                                               static_cast<int32_t>(wide.size()), &status);
  AR_CHECK(U_SUCCESS(status), "ICU: NFC check failed (", u_errorName(status), ")");
  if (normalized) return aligned_identity(text);

  // Split at NFC boundaries (positions where nothing before can combine with what follows)
  // and normalise each run on its own: equal to normalising the whole text.
  AlignedText out;
  size_t byte_pos = 0;
  size_t run_begin_byte = 0;
  std::string run;
  auto flush = [&] {
    if (run.empty()) return;
    const std::u16string w = to_utf16(run);
    std::u16string buffer(w.size() * 4 + 8, u'\0');
    UErrorCode st = U_ZERO_ERROR;
    const int32_t n = unorm2_normalize(norm, reinterpret_cast<const UChar*>(w.data()), static_cast<int32_t>(w.size()),
                                       reinterpret_cast<UChar*>(buffer.data()), static_cast<int32_t>(buffer.size()), &st);
    AR_CHECK(U_SUCCESS(st), "ICU: NFC normalisation failed (", u_errorName(st), ")");
    buffer.resize(static_cast<size_t>(n));
    const std::string composed = to_utf8(buffer);
    if (composed == run) {
      for (size_t i = 0; i < run.size(); ++i) out.origin.emplace_back(run_begin_byte + i, run_begin_byte + i + 1);
    } else {
      for (size_t i = 0; i < composed.size(); ++i) out.origin.emplace_back(run_begin_byte, run_begin_byte + run.size());
    }
    out.text += composed;
    run.clear();
  };
  while (byte_pos < text.size()) {
    size_t length = 1;
    const uint32_t c = decode_code_point(text, byte_pos, &length);
    if (unorm2_hasBoundaryBefore(norm, static_cast<UChar32>(c))) {
      flush();
      run_begin_byte = byte_pos;
    }
    run.append(text, byte_pos, length);
    byte_pos += length;
  }
  flush();
  return out;
}

}  // namespace anchor::unicode
