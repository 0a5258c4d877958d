#include "trainer/model/safetensors_header.h"

#include <nlohmann/json.hpp>

#include "trainer/common/error.h"

namespace anchor {

namespace {

using nlohmann::json;

// Headers larger than this are rejected before allocation: a corrupt length field must not
// make us allocate gigabytes. (The reference implementation uses the same 100 MB bound.)
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

}  // namespace

size_t safetensors_dtype_bytes(const std::string& dtype) {
  static const std::map<std::string, size_t> bytes = {{"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8},
                                                      {"I32", 4}, {"I16", 2}, {"I8", 1},  {"U8", 1},   {"BOOL", 1}};
  auto it = bytes.find(dtype);
  return it == bytes.end() ? 0 : it->second;
}

SafetensorsHeader parse_safetensors_header(const uint8_t* bytes, size_t size, const std::string& path) {
  AR_CHECK(size >= 8, path, ": truncated safetensors file (", size, " bytes, the 8-byte header length is missing)");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];
  AR_CHECK(header_len <= kMaxHeaderBytes, path, ": corrupt safetensors header length ", header_len, " (more than ",
           kMaxHeaderBytes, " bytes)");
  AR_CHECK(8 + header_len <= size, path, ": truncated safetensors file: header says ", header_len,
           " bytes of JSON but the file has only ", size, " bytes");
  SafetensorsHeader out;
  out.data_start = 8 + header_len;
  json header;
  try {
    header = json::parse(reinterpret_cast<const char*>(bytes + 8), reinterpret_cast<const char*>(bytes + 8 + header_len));
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number overflow
    AR_FAIL(path, ": corrupt safetensors header (not valid JSON: ", e.what(), ")");
  }
  AR_CHECK(header.is_object(), path, ": corrupt safetensors header (expected a JSON object)");
  const uint64_t data_size = size - out.data_start;
  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      AR_CHECK(value.is_object(), path, ": __metadata__ must be an object of strings");
      for (const auto& [k, v] : value.items()) {
        AR_CHECK(v.is_string(), path, ": __metadata__['", k, "'] must be a string");
        out.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    AR_CHECK(value.is_object() && value.contains("dtype") && value.contains("shape") && value.contains("data_offsets"),
             path, ": tensor '", name, "': header entry needs dtype, shape and data_offsets");
    SafetensorsEntry entry;
    try {
      entry.dtype = value.at("dtype").get<std::string>();
      entry.shape = value.at("shape").get<std::vector<int64_t>>();
      const auto offsets = value.at("data_offsets").get<std::vector<uint64_t>>();
      AR_CHECK(offsets.size() == 2, path, ": tensor '", name, "': data_offsets must have two entries");
      entry.begin = offsets[0];
      entry.end = offsets[1];
    } catch (const json::exception& e) {
      AR_FAIL(path, ": tensor '", name, "': malformed header entry (", e.what(), ")");
    }
    const size_t dtype_bytes = safetensors_dtype_bytes(entry.dtype);
    AR_CHECK(dtype_bytes != 0, path, ": tensor '", name, "': unsupported dtype '", entry.dtype, "'");
    // The byte size must not overflow: a shape like [2^62, 8] would otherwise wrap to a small
    // number that matches the offsets and ask torch for an impossible allocation.
    uint64_t nbytes = dtype_bytes;
    for (int64_t d : entry.shape) {
      AR_CHECK(d >= 0, path, ": tensor '", name, "': negative dimension in shape");
      AR_CHECK(d == 0 || nbytes <= data_size / static_cast<uint64_t>(d), path,
               ": truncated or corrupt safetensors file: tensor '", name, "' has a shape that needs more than the ",
               data_size, " bytes of the data section");
      nbytes *= static_cast<uint64_t>(d);
    }
    AR_CHECK(entry.begin <= entry.end && entry.end - entry.begin == nbytes, path, ": tensor '", name,
             "': data_offsets [", entry.begin, ", ", entry.end, ") do not match shape x dtype (", nbytes, " bytes)");
    AR_CHECK(entry.end <= data_size, path, ": truncated safetensors file: tensor '", name, "' needs bytes up to ",
             entry.end, " of the data section but only ", data_size, " are present");
    out.entries.emplace(name, std::move(entry));
  }
  return out;
}

}  // namespace anchor
