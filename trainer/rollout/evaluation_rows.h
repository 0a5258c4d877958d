// Rows of one evaluation generate call at most: more gains nothing on a CPU or a GPU. The
// evaluation's default batch and the memory plan's evaluation phase both use this number.
#pragma once

#include <cstdint>

namespace anchor {

inline constexpr int64_t kMaxEvalRowsPerCall = 256;

}  // namespace anchor
