// JSONL prompt datasets (prompt rows and chat `messages` rows), rendered with every preset
// chat template, and the same bytes as an SFT dataset whose target texts get the conditional
// mode's control tokens and the indicator. Failures must be anchor::Error naming file:line.
#include "data/chat_template.h"
#include "data/prompt_dataset.h"
#include "data/sft_dataset.h"
#include "tests/fuzz/fuzz_util.h"
#include "trainer/common/error.h"
#include "trainer/sft/control_text.h"

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
  try {
    const auto sft_rows = anchor::data::SftDataset::load_jsonl(path, {});
    for (size_t i = 0; i < sft_rows.size(); ++i)
      for (const auto& m : sft_rows[i].messages) {
        std::vector<anchor::sft::LabeledSentence> labeled;
        size_t k = 0;
        for (const auto& [b, e] : anchor::sft::target_sentences(m.content, 1))
          labeled.push_back({b, e, 0.0, ++k % 2 ? anchor::Control::good : anchor::Control::bad});
        const std::string out = anchor::sft::with_control_tokens(m.content, labeled);
        // Inserting tokens only adds text: removing them gives the original back.
        std::string stripped = out;
        for (const std::string t : {"<|good|>", "<|bad|>"})
          for (size_t at; (at = stripped.find(t)) != std::string::npos;) stripped.erase(at, t.size());
        if (m.content.find("<|") == std::string::npos && stripped != m.content) __builtin_trap();
        (void)anchor::with_indicator(m.content);
      }
  } catch (const anchor::Error&) {
  }
  return 0;
}
