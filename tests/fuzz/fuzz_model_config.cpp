// config.json of a model directory (Llama / SmolLM2 / Qwen2 / Qwen3 families). A config that
// parses must serialise and parse back to the same JSON.
#include <nlohmann/json.hpp>

#include "trainer/common/error.h"
#include "trainer/model/llama_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, false);
  if (j.is_discarded()) return 0;  // not JSON: read_json_file reports it with line:column
  try {
    const anchor::LlamaConfig config = anchor::parse_llama_config(j, "config.json");
    const nlohmann::json out = anchor::llama_config_to_json(config);
    if (anchor::llama_config_to_json(anchor::parse_llama_config(out, "round trip")) != out) __builtin_trap();
  } catch (const anchor::Error&) {
  }
  return 0;
}
