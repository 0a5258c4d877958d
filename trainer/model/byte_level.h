// GPT-2's byte-level alphabet: every byte 0..255 is written as one printable Unicode
// character, so that a byte-level BPE vocabulary is a set of ordinary strings. Printable
// Latin-1 bytes map to themselves; the other 68 bytes map to U+0100.. in order (space -> 'Ġ',
// newline -> 'Ċ'). Used by the ByteLevel pre-tokenizer (bytes -> characters) and decoder
// (characters -> bytes). Torch-free.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace anchor::byte_level {

// The character (as UTF-8) that stands for `byte`.
const std::string& char_of_byte(uint8_t byte);

// The whole string mapped byte by byte.
std::string encode(const std::string& bytes);

// Inverse of encode(); std::nullopt if some character of `text` is not in the alphabet (HF
// then decodes that token as its raw UTF-8 bytes).
std::optional<std::string> decode(const std::string& text);

}  // namespace anchor::byte_level
