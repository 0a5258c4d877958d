#include "credit/attention_statistics.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>

#include "trainer/common/error.h"

namespace anchor::credit {

StreamingAttentionReducer::StreamingAttentionReducer(std::vector<int64_t> layers, int64_t heads,
                                                     int64_t response_begin, const at::Tensor& response_lengths,
                                                     int64_t response_width, ReducerOptions options,
                                                     const at::Tensor& sentence_ids)
    : options_(options), response_begin_(response_begin), response_width_(response_width) {
  AR_CHECK(!layers.empty(), "credit: no layers to observe");
  AR_CHECK(std::is_sorted(layers.begin(), layers.end()), "credit: observed layers must be sorted");
  stats_.layers = std::move(layers);
  stats_.heads = heads;
  stats_.response_lengths = response_lengths.to(torch::kCPU, torch::kLong).contiguous();
  if (sentence_ids.defined()) {
    AR_CHECK(sentence_ids.dim() == 2 && sentence_ids.size(0) == response_lengths.size(0) &&
                 sentence_ids.size(1) == response_width,
             "credit: sentence_ids must be [batch, response width]");
    sentence_ids_ = sentence_ids.to(torch::kCPU, torch::kLong).contiguous();
    num_sentences_ = sentence_ids_.numel() > 0 ? sentence_ids_.max().item<int64_t>() + 1 : 0;
    num_sentences_ = std::max<int64_t>(num_sentences_, 1);
    const int64_t B = sentence_ids_.size(0);
    stats_.sentence_sizes = torch::zeros({B, num_sentences_}, torch::kLong);
    auto ids = sentence_ids_.accessor<int64_t, 2>();
    auto sizes = stats_.sentence_sizes.accessor<int64_t, 2>();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t r = 0; r < response_width; ++r)
        if (ids[b][r] >= 0) ++sizes[b][ids[b][r]];
  }
}

bool StreamingAttentionReducer::observes_layer(int64_t layer) const {
  return std::binary_search(stats_.layers.begin(), stats_.layers.end(), layer);
}

void StreamingAttentionReducer::allocate(const at::Tensor& probs) {
  const int64_t B = probs.size(0), J = stats_.num_heads(), R = response_width_;
  AR_CHECK(B == stats_.response_lengths.size(0), "credit: the observed batch has ", B, " rows, the reducer expects ",
           stats_.response_lengths.size(0));
  AR_CHECK(probs.size(1) == stats_.heads, "credit: the model has ", probs.size(1), " heads, the reducer expects ",
           stats_.heads);
  const auto acc = probs.options().dtype(torch::kDouble);
  stats_.lookback_sum = torch::zeros({B, J}, acc);
  stats_.waad_heads = torch::zeros({B, J, R}, acc);
  stats_.fai_sums = torch::zeros({B, J, R}, acc);
  lengths_device_ = stats_.response_lengths.to(probs.device());
  if (sentence_ids_.defined()) {
    stats_.block_sums = torch::zeros({B, J, num_sentences_, num_sentences_}, acc);
    // One-hot sentence membership of every column (prompt columns belong to none).
    const int64_t K = response_begin_ + R;
    at::Tensor onehot = torch::zeros({B, K, num_sentences_}, torch::kFloat);
    at::Tensor ids = sentence_ids_;
    at::Tensor in_sentence = ids.ge(0);
    at::Tensor resp = onehot.slice(1, response_begin_, K);
    resp.scatter_(2, ids.clamp_min(0).unsqueeze(2), in_sentence.to(torch::kFloat).unsqueeze(2));
    sentence_onehot_ = onehot.to(probs.device(), probs.scalar_type());
  }
}

void StreamingAttentionReducer::on_chunk(const AttentionChunk& chunk) {
  const auto start = std::chrono::steady_clock::now();
  AR_CHECK(chunk.key_offset == 0, "credit: attention statistics need one full forward (no KV cache)");
  const auto it = std::lower_bound(stats_.layers.begin(), stats_.layers.end(), chunk.layer);
  if (it == stats_.layers.end() || *it != chunk.layer) return;
  const int64_t slot = it - stats_.layers.begin();
  const at::Tensor& probs = chunk.probs;  // [B, H, rows, K]
  if (!stats_.lookback_sum.defined()) allocate(probs);
  const int64_t B = probs.size(0), H = probs.size(1), rows = probs.size(2), K = probs.size(3);
  const int64_t P = response_begin_, R = response_width_;
  AR_CHECK(K == P + R, "credit: attention over ", K, " keys, expected prompt ", P, " + response ", R);
  // Response rows inside this chunk: [a, b) in column coordinates.
  const int64_t a = std::max(chunk.query_begin, P), b = std::min(chunk.query_begin + rows, P + R);
  if (a >= b) return;
  const int64_t n = b - a;
  const at::Tensor p = probs.slice(2, a - chunk.query_begin, b - chunk.query_begin);  // [B, H, n, K]
  const auto fopt = probs.options();
  const at::Tensor t = torch::arange(a, b, fopt);
  const at::Tensor dist = (t.unsqueeze(1) - torch::arange(K, fopt).unsqueeze(0)).clamp_min(0);  // [n, K]
  const at::Tensor row_r = torch::arange(a - P, b - P, fopt.dtype(torch::kLong));
  const at::Tensor row_valid = row_r.unsqueeze(0).lt(lengths_device_.unsqueeze(1)).to(probs.scalar_type());  // [B, n]

  // Look-back distance (5.2) and WAAD numerators (5.3) per head and row.
  const at::Tensor valid_rows = row_valid.unsqueeze(1);  // [B, 1, n]
  const at::Tensor lookback = (p * dist).sum(-1) * valid_rows;                      // [B, H, n]
  const at::Tensor waad = (p * dist.clamp_max(static_cast<double>(options_.window))).sum(-1) * valid_rows;
  stats_.lookback_sum.slice(1, slot * H, (slot + 1) * H).add_(lookback.sum(-1).to(torch::kDouble));
  stats_.waad_heads.slice(1, slot * H, (slot + 1) * H).slice(2, a - P, b - P).add_(waad.to(torch::kDouble));

  // FAI column sums (5.3): rows t with H_lo <= t - s <= H_hi over response keys s.
  const at::Tensor gap = (t - static_cast<double>(P)).unsqueeze(1) - torch::arange(R, fopt).unsqueeze(0);  // [n, R]
  const at::Tensor band = gap.ge(static_cast<double>(options_.horizon_low))
                              .logical_and(gap.le(static_cast<double>(options_.horizon_high)))
                              .to(probs.scalar_type());
  const at::Tensor weight = band.unsqueeze(0) * row_valid.unsqueeze(2);  // [B, n, R]
  const at::Tensor fai = (p.slice(3, P, P + R) * weight.unsqueeze(1)).sum(2);  // [B, H, R]
  stats_.fai_sums.slice(1, slot * H, (slot + 1) * H).add_(fai.to(torch::kDouble));

  // Sentence block sums (5.6): keys summed per sentence, then rows summed per sentence.
  if (sentence_onehot_.defined()) {
    const int64_t S = num_sentences_;
    const at::Tensor per_key = torch::matmul(p.reshape({B, H * n, K}), sentence_onehot_).view({B, H, n, S});
    const at::Tensor rows_onehot = sentence_onehot_.slice(1, a, b).transpose(1, 2).unsqueeze(1);  // [B, 1, S, n]
    stats_.block_sums.slice(1, slot * H, (slot + 1) * H).add_(torch::matmul(rows_onehot, per_key).to(torch::kDouble));
  }
  seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

AttentionStatistics StreamingAttentionReducer::finish() {
  const int64_t B = stats_.response_lengths.size(0), J = stats_.num_heads(), R = response_width_;
  if (!stats_.lookback_sum.defined()) {  // nothing observed (e.g. every response empty)
    const auto acc = torch::TensorOptions().dtype(torch::kDouble);
    stats_.lookback_sum = torch::zeros({B, J}, acc);
    stats_.waad_heads = torch::zeros({B, J, R}, acc);
    stats_.fai_sums = torch::zeros({B, J, R}, acc);
    if (sentence_ids_.defined()) stats_.block_sums = torch::zeros({B, J, num_sentences_, num_sentences_}, acc);
  }
  AttentionStatistics out = stats_;
  out.lookback_sum = out.lookback_sum.cpu();
  out.waad_heads = out.waad_heads.cpu();
  out.fai_sums = out.fai_sums.cpu();
  if (out.block_sums.defined()) out.block_sums = out.block_sums.cpu();
  return out;
}

AttentionStatistics concat_statistics(const std::vector<AttentionStatistics>& parts, int64_t min_width) {
  AR_CHECK(!parts.empty(), "credit: no statistics to concatenate");
  int64_t R = min_width, S = 0;
  bool sentences = parts.front().block_sums.defined();
  for (const auto& p : parts) {
    R = std::max(R, p.waad_heads.size(2));
    if (sentences) S = std::max(S, p.block_sums.size(2));
  }
  auto pad_last = [](const at::Tensor& x, int64_t width) {
    return x.size(-1) == width ? x : torch::constant_pad_nd(x, {0, width - x.size(-1)}, 0);
  };
  std::vector<at::Tensor> lengths, lookback, waad, fai, blocks, sizes;
  for (const auto& p : parts) {
    AR_CHECK(p.layers == parts.front().layers && p.heads == parts.front().heads,
             "credit: statistics of different layer sets cannot be concatenated");
    lengths.push_back(p.response_lengths);
    lookback.push_back(p.lookback_sum);
    waad.push_back(pad_last(p.waad_heads, R));
    fai.push_back(pad_last(p.fai_sums, R));
    if (sentences) {
      const int64_t s = p.block_sums.size(2);
      blocks.push_back(torch::constant_pad_nd(p.block_sums, {0, S - s, 0, S - s}, 0));
      sizes.push_back(pad_last(p.sentence_sizes, S));
    }
  }
  AttentionStatistics out;
  out.layers = parts.front().layers;
  out.heads = parts.front().heads;
  out.response_lengths = torch::cat(lengths);
  out.lookback_sum = torch::cat(lookback);
  out.waad_heads = torch::cat(waad);
  out.fai_sums = torch::cat(fai);
  if (sentences) {
    out.block_sums = torch::cat(blocks);
    out.sentence_sizes = torch::cat(sizes);
  }
  return out;
}

}  // namespace anchor::credit
