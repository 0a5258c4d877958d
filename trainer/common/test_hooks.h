// Test-only fault injection shared by the trainers, driven by environment variables that no
// user sets (tests/python/check_nonfinite.py). Reading them costs a getenv per call.
#pragma once

#include <cstdint>

namespace anchor {

// ANCHOR_TEST_POISON="<step>[+]:<kind>" (kind: reward | gradient): whether step `step` should
// get a NaN in `kind` ("+": that step and every later one).
bool test_poisoned(int64_t step, const char* kind);

}  // namespace anchor

namespace anchor {

// ANCHOR_TEST_FAULT="<rank>:<step>:throw|kill|hang" (tests/python/check_data_parallel.py): that
// rank throws an error, SIGKILLs itself or stops responding after the step's rollouts —
// mid-step, while the other ranks wait in a collective.
void inject_rank_fault(int rank, int64_t step);

}  // namespace anchor
