// The YAML config reader with `base:` chains: the input is "MAIN" or "MAIN\n#---base---\nBASE";
// BASE is written as base.yaml next to MAIN, so `base: base.yaml` (and cycles) are reachable.
// Every failure must be an anchor::Error (a message naming file:line or the key); anything
// else escaping, or a crash, is a bug.
#include <string>

#include "tests/fuzz/fuzz_util.h"
#include "trainer/common/error.h"
#include "trainer/config/train_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const std::string marker = "\n#---base---\n";
  const size_t split = text.find(marker);
  const std::string main_text = text.substr(0, split);
  const std::string base_text = split == std::string::npos ? "" : text.substr(split + marker.size());
  anchor::fuzz::write("base.yaml", base_text.data(), base_text.size());
  const std::string path = anchor::fuzz::write("main.yaml", main_text.data(), main_text.size());
  for (auto use : {anchor::ConfigUse::rl, anchor::ConfigUse::sft}) {
    try {
      const anchor::TrainConfig config = anchor::load_train_config(path, {}, use);
      // A config that loads must also print and re-read as itself.
      const std::string yaml = anchor::train_config_to_yaml(config);
      const anchor::TrainConfig again = anchor::parse_train_config(yaml, "resolved", {}, use);
      if (anchor::train_config_to_yaml(again) != yaml) __builtin_trap();
    } catch (const anchor::Error&) {
    }
  }
  return 0;
}
