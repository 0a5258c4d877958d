// Adds special tokens (SFT control tokens, [IND]) to a model and its tokenizer. A token the
// tokenizer already has keeps its id and its trained rows (so a resumed or reloaded model is
// not re-initialised). A new token's embedding row — and its lm_head row when the head is not
// tied — is the mean of the rows of the tokenizer's existing tokens plus N(0, noise_std) noise
// (Korbak et al.); where the model's embedding already has spare rows past the tokenizer's
// vocabulary (padded vocabularies), those rows are overwritten rather than new ones appended.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "trainer/model/pretrained.h"

namespace anchor::sft {

// Ids of `tokens`, in order.
std::vector<int64_t> add_special_tokens(Pretrained& pretrained, const std::vector<std::string>& tokens,
                                        double noise_std, uint64_t seed);

}  // namespace anchor::sft
