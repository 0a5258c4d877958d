// The external reward's answer parser (rewards/reward_protocol.h) reads whatever a user's
// program writes back: any bytes must give an answer of the right shape or an anchor::Error,
// never a crash, a hang or another exception type.
#include <string>
#include <vector>

#include "rewards/reward_protocol.h"
#include "trainer/common/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string line(reinterpret_cast<const char*>(data), size);
  for (const size_t rows : {size_t{0}, size_t{1}, size_t{3}}) {
    try {
      const auto a = anchor::rewards::parse_reward_answer(line, rows, {"format", "steps"}, "fuzz");
      if (a.scores.size() != rows || a.notes.size() != rows || a.sub_scores.size() != 2) __builtin_trap();
      for (const auto& s : a.sub_scores)
        if (s.size() != rows) __builtin_trap();
    } catch (const anchor::Error&) {
    }
  }
  return 0;
}
