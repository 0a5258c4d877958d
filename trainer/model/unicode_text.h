// UTF-8 text helpers for the tokenizers: validation, lossy repair with an offset map (byte-
// level tokens often hold part of a character), the complete-character prefix of a byte stream
// (streaming output), NFC normalisation that remembers where each byte came from, and the
// characters of a byte span (what a per-token display shows). Torch-free.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace anchor::unicode {

// Byte offset of the first ill-formed UTF-8 sequence, or std::string::npos if `text` is valid.
size_t first_invalid_utf8(const std::string& text);

// `bytes` with every maximal ill-formed subsequence replaced by U+FFFD (Unicode's
// "substitution of maximal subparts", what Rust's from_utf8_lossy and Python's
// errors="replace" do). If offset_map is given it receives bytes.size() + 1 entries: the
// output offset of each input byte (bytes of one replaced or valid character all map to
// that character's start) and, last, the output size.
std::string repair_utf8(const std::string& bytes, std::vector<size_t>* offset_map = nullptr);

// Length of the longest prefix of `bytes` that does not end inside an incomplete (but so far
// well-formed) character: what a streaming decoder may print now. Ill-formed bytes count as
// complete (they print as U+FFFD).
size_t complete_utf8_prefix(const std::string& bytes);

// The characters whose first byte lies in [begin, end) of valid UTF-8 `text`: a token that
// starts a multi-byte character shows the whole character; one that only continues it
// shows "".
std::string chars_starting_in(const std::string& text, size_t begin, size_t end);

// Text after normalisation plus, for every byte of it, the byte range of the original text it
// came from (a composed character maps to the whole run it was composed from).
struct AlignedText {
  std::string text;
  std::vector<std::pair<size_t, size_t>> origin;  // [text.size()] ranges in the original
};

// Identity alignment of `text` shifted by `base`.
AlignedText aligned_identity(const std::string& text, size_t base = 0);

// NFC of valid UTF-8 `text` (ICU), aligned to the input. Only runs between NFC boundaries
// that change are re-mapped; the common already-normalised text costs one check.
AlignedText nfc(const std::string& text);

// Unicode White_Space (the 25 code points); what Rust's char::is_whitespace tests.
bool is_white_space(uint32_t code_point);

// Decodes the code point starting at text[pos] of valid UTF-8; *length gets its byte count.
uint32_t decode_code_point(const std::string& text, size_t pos, size_t* length);
void append_utf8(std::string& out, uint32_t code_point);

}  // namespace anchor::unicode
