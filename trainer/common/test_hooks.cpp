#include "trainer/common/test_hooks.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace anchor {

bool test_poisoned(int64_t step, const char* kind) {
  const char* spec = std::getenv("ANCHOR_TEST_POISON");
  if (spec == nullptr) return false;
  long long s = -1;
  char plus = 0;
  char what[16] = {0};
  if (std::sscanf(spec, "%lld%c", &s, &plus) < 1) return false;
  const char* colon = std::strchr(spec, ':');
  if (colon == nullptr || std::sscanf(colon + 1, "%15s", what) != 1 || std::string(what) != kind) return false;
  return plus == '+' ? step >= s : step == s;
}

}  // namespace anchor
