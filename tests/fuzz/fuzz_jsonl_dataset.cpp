// JSONL prompt datasets (prompt rows and chat `messages` rows), rendered with every preset
// chat template. Failures must be anchor::Error naming file:line.
#include "data/chat_template.h"
#include "data/prompt_dataset.h"
#include "tests/fuzz/fuzz_util.h"
#include "trainer/common/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = anchor::fuzz::write("data.jsonl", reinterpret_cast<const char*>(data), size);
  try {
    const auto dataset = anchor::data::PromptDataset::load_jsonl(path);
    for (const char* spec : {"plain", "chatml", "llama3"}) {
      const anchor::data::ChatTemplate chat(spec, "data.template");
      try {
        dataset.check_renders_with(chat, "data.template");
        for (size_t i = 0; i < dataset.size(); ++i) chat.render(dataset[i].conversation(), true);
      } catch (const anchor::Error&) {
      }
    }
  } catch (const anchor::Error&) {
  }
  return 0;
}
