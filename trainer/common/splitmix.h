// splitmix64's output function: a bijective 64-bit mixer. Counter-based random draws (the
// sampler's per-row uniforms, conditional SFT's unconditioned sentences) hash their counters
// with it, so a draw depends on nothing but its own (seed, counter). Torch-free.
#pragma once

#include <cstdint>

namespace anchor {

inline uint64_t splitmix64_mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace anchor
