// Test-only fault injection shared by the trainers, driven by environment variables that no
// user sets (tests/python/check_nonfinite.py). Reading them costs a getenv per call.
#pragma once

#include <cstdint>

namespace anchor {

// ANCHOR_TEST_POISON="<step>[+]:<kind>" (kind: reward | gradient): whether step `step` should
// get a NaN in `kind` ("+": that step and every later one).
bool test_poisoned(int64_t step, const char* kind);

}  // namespace anchor
