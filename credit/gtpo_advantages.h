// GTPO token advantages (Tan et al., "GTPO and GRPO-S: Token and Sequence-Level Reward Shaping
// with Policy Entropy", arXiv 2508.04349): each token gets a reward of its own, shaped by the
// policy's entropy, and the advantages are those rewards normalised within the group. A
// comparator for the attention strategies: token-level credit from entropy alone
// (docs/credit.md, "Comparators").
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace anchor::credit {

struct GtpoOptions {
  int64_t group_size = 1;      // G samples per prompt; rows g*G .. g*G+G-1 form group g
  double alpha_reward = 1.0;   // α1
  double alpha_entropy = 0.1;  // α2
  double eps = 1e-6;
};

// correct [B] bool, entropy [B, R] (the old policy's, detached), response_lengths [B]; B a multiple
// of G. Returns [B, R] float token advantages, 0 on padding. For response i at position t (only the
// group's responses still running at t take part):
//   correct i (O+):  r_it = α1 + α2 · d_t · H_it / Σ_{k in O+ at t} H_kt          d_t = |O+ at t|
//   wrong   j (O-):  r_jt = -α1 - α2 · h_t · (1/H_jt) / Σ_{k in O- at t} (1/H_kt)  h_t = |O- at t|
// so a correct response's uncertain tokens and a wrong response's confident ones get the larger
// share (an entropy of 0 counts as eps; a position whose O+ entropies are all 0 shares equally).
// Advantage = (r_it - mean) / (std + eps) over every token of the group. A group whose responses are
// all correct or all wrong gets 0, as under GRPO.
at::Tensor gtpo_token_advantages(const at::Tensor& correct, const at::Tensor& entropy,
                                 const at::Tensor& response_lengths, const GtpoOptions& options);

}  // namespace anchor::credit
