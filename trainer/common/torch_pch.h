// Precompiled header for translation units that use LibTorch. Keep it to torch itself:
// project headers change often and would invalidate the (expensive) precompiled header.
#pragma once
#include <torch/torch.h>
