#include "trainer/common/test_hooks.h"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "trainer/common/error.h"

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

void inject_rank_fault(int rank, int64_t step) {
  const char* spec = std::getenv("ANCHOR_TEST_FAULT");
  if (spec == nullptr) return;
  int r = -1;
  long long s = -1;
  char kind[16] = {0};
  if (std::sscanf(spec, "%d:%lld:%15s", &r, &s, kind) != 3 || r != rank || s != step) return;
  if (std::string(kind) == "kill") std::raise(SIGKILL);
  if (std::string(kind) == "hang") std::this_thread::sleep_for(std::chrono::hours(1));
  AR_FAIL("ANCHOR_TEST_FAULT: injected error at step ", step);
}

bool test_allows_cpu_bf16() {
  const char* flag = std::getenv("ANCHOR_TEST_CPU_BF16");
  return flag != nullptr && std::string(flag) == "1";
}

}  // namespace anchor
