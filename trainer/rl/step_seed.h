// Seeds of one RL step, derived from (run seed, step, stream) only: resuming needs no generator
// state, and every data-parallel rank derives the same seeds.
#pragma once

#include <cstdint>

namespace anchor {

// Streams used by the step: 0.. sampling rounds, 1000 + epoch mini-batch order, 2000 random
// credit baseline.
inline uint64_t derive_seed(uint64_t seed, int64_t step, uint64_t stream) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull ^ (static_cast<uint64_t>(step) + 1) * 0xBF58476D1CE4E5B9ull ^
               (stream + 1) * 0x94D049BB133111EBull;
  x ^= x >> 31;
  return x * 0xD6E8FEB86659FD93ull;
}

}  // namespace anchor
