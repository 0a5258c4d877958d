// The safetensors header (8-byte little-endian length, then JSON {name: {dtype, shape,
// data_offsets}, "__metadata__": {k: v}}), parsed and validated against the file size
// without LibTorch, so it can be fuzzed on its own (tests/fuzz/). SafetensorsFile maps the
// file and hands the bytes here before any tensor is touched.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace anchor {

struct SafetensorsEntry {
  std::string dtype;           // "F32", "BF16", ...
  std::vector<int64_t> shape;
  uint64_t begin = 0;          // byte offsets into the data section
  uint64_t end = 0;
};

struct SafetensorsHeader {
  uint64_t data_start = 0;     // 8 + header length: where the data section begins
  std::map<std::string, SafetensorsEntry> entries;
  std::map<std::string, std::string> metadata;
};

// Bytes per element of a safetensors dtype code ("F32" -> 4), 0 when unsupported.
size_t safetensors_dtype_bytes(const std::string& dtype);

// Parses the header of a safetensors file whose complete contents are bytes[0, size). Every
// entry is checked (known dtype, non-negative shape whose byte size does not overflow and
// equals its data_offsets, data inside the file); any defect is an error naming `path`.
SafetensorsHeader parse_safetensors_header(const uint8_t* bytes, size_t size, const std::string& path);

}  // namespace anchor
