// safetensors headers: the input is a whole file (length, JSON header, data). A header that
// parses must describe tensors that lie inside the input.
#include "trainer/common/error.h"
#include "trainer/model/safetensors_header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto header = anchor::parse_safetensors_header(data, size, "fuzz.safetensors");
    for (const auto& [name, e] : header.entries)
      if (e.begin > e.end || header.data_start + e.end > size) __builtin_trap();
  } catch (const anchor::Error&) {
  }
  return 0;
}
