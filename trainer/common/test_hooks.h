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

// ANCHOR_TEST_CPU_BF16=1 (tests/python/check_bf16_cpu.py): model.dtype bfloat16 is allowed on a
// CPU without bf16 hardware, so that the mixed-precision training path (fp32 master weights,
// bf16 compute under autocast) runs where no GPU is: emulated, several times slower, correct.
bool test_allows_cpu_bf16();

}  // namespace anchor
