// Checkpoint manifests (manifest.json). One that parses must serialise and parse back equal.
#include "trainer/checkpoint/checkpoint_manifest.h"
#include "trainer/common/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto entries = anchor::parse_manifest(std::string(reinterpret_cast<const char*>(data), size), "manifest.json");
    const std::string text = anchor::manifest_to_json(entries);
    if (anchor::manifest_to_json(anchor::parse_manifest(text, "round trip")) != text) __builtin_trap();
  } catch (const anchor::Error&) {
  }
  return 0;
}
