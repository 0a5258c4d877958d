#include "credit/attention_statistics.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <limits>

#include "trainer/common/error.h"

namespace anchor::credit {

ReducerOptions reducer_options(const CreditOptions& c) {
  ReducerOptions o;
  o.window = c.window;
  o.horizon_low = c.horizon_low;
  o.horizon_high = c.horizon_high;
  o.chunk_rows = c.chunk_rows;
  o.detect_sinks = true;
  o.exclude_sinks = c.sinks == SinkHandling::exclude;
  o.sink_key_share = c.sink_key_share;
  o.sink_query_share = c.sink_query_share;
  o.value_weighted = c.attention_weighting == AttentionWeighting::value_norm;
  return o;
}

StreamingAttentionReducer::StreamingAttentionReducer(std::vector<int64_t> layers, int64_t heads,
                                                     int64_t response_begin, const at::Tensor& response_lengths,
                                                     int64_t response_width, ReducerOptions options,
                                                     const at::Tensor& sentence_ids, const at::Tensor& prompt_lengths)
    : options_(options), response_begin_(response_begin), response_width_(response_width) {
  AR_CHECK(!layers.empty(), "credit: no layers to observe");
  AR_CHECK(std::is_sorted(layers.begin(), layers.end()), "credit: observed layers must be sorted");
  AR_CHECK(!options_.exclude_sinks || options_.detect_sinks, "credit: excluding sinks needs sink detection");
  stats_.layers = std::move(layers);
  stats_.heads = heads;
  stats_.response_lengths = response_lengths.to(torch::kCPU, torch::kLong).contiguous();
  const int64_t B0 = stats_.response_lengths.size(0);
  prompt_lengths_ = prompt_lengths.defined() ? prompt_lengths.to(torch::kCPU, torch::kLong).contiguous()
                                             : torch::full({B0}, response_begin, torch::kLong);
  AR_CHECK(prompt_lengths_.numel() == B0 && prompt_lengths_.le(response_begin).all().item<bool>(),
           "credit: prompt lengths must be [batch] and at most the prompt width ", response_begin);
  stats_.sinks_detected = options_.detect_sinks;
  stats_.sinks_excluded = options_.exclude_sinks;
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

void StreamingAttentionReducer::zero_sums(const at::TensorOptions& acc) {
  const int64_t B = stats_.response_lengths.size(0), J = stats_.num_heads(), R = response_width_;
  const int64_t Lo = static_cast<int64_t>(stats_.layers.size());
  stats_.lookback_sum = torch::zeros({B, J}, acc);
  stats_.waad_heads = torch::zeros({B, J, R}, acc);
  stats_.fai_sums = torch::zeros({B, J, R}, acc);
  if (sentence_ids_.defined()) stats_.block_sums = torch::zeros({B, J, num_sentences_, num_sentences_}, acc);
  stats_.sink_mass_sum = torch::zeros({B, J}, acc);
  stats_.first_token_mass_sum = torch::zeros({B, J}, acc);
  stats_.prompt_sink_heads = torch::zeros({B, Lo, response_begin_}, torch::kLong);
  stats_.response_sink_heads = torch::zeros({B, Lo, R}, torch::kLong);
}

void StreamingAttentionReducer::allocate(const at::Tensor& probs) {
  const int64_t B = probs.size(0), J = stats_.num_heads(), R = response_width_;
  AR_CHECK(B == stats_.response_lengths.size(0), "credit: the observed batch has ", B, " rows, the reducer expects ",
           stats_.response_lengths.size(0));
  AR_CHECK(probs.size(1) == stats_.heads, "credit: the model has ", probs.size(1), " heads, the reducer expects ",
           stats_.heads);
  zero_sums(probs.options().dtype(torch::kDouble));
  lengths_device_ = stats_.response_lengths.to(probs.device());
  first_column_ = (response_begin_ - prompt_lengths_).to(probs.device());
  if (sentence_ids_.defined()) {
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

void StreamingAttentionReducer::survey(const at::Tensor& rows, const at::Tensor& row_valid, int64_t layer) {
  // rows: the chunk's response rows [B, H, n, K]; counts every key's rows above sink_key_share.
  const int64_t B = rows.size(0), H = rows.size(1), K = rows.size(3);
  if (survey_layer_ != layer) {
    survey_counts_ = torch::zeros({B, H, response_begin_ + response_width_}, rows.options());
    survey_layer_ = layer;
  }
  const at::Tensor above = rows.gt(options_.sink_key_share).to(rows.scalar_type());
  survey_counts_.slice(2, 0, K).add_(torch::matmul(row_valid.view({B, 1, 1, -1}), above).view({B, H, K}));
}

void StreamingAttentionReducer::decide_sinks(int64_t layer, const at::Tensor& like) {
  const int64_t B = like.size(0), H = like.size(1), K = response_begin_ + response_width_;
  const auto opt = like.options();
  at::Tensor sinks = torch::zeros({B, H, K}, opt.dtype(torch::kBool));
  if (survey_layer_ == layer) {  // else no survey chunk had response rows: token 0 only
    const at::Tensor needed = (lengths_device_.to(opt.dtype()) * options_.sink_query_share).view({B, 1, 1});
    sinks = survey_counts_.gt(needed).logical_and(lengths_device_.gt(0).view({B, 1, 1}));
  }
  sinks.scatter_(2, first_column_.view({B, 1, 1}).expand({B, H, 1}), true);
  sinks_ = sinks.to(opt.dtype());
  sink_layer_ = layer;
  const int64_t slot =
      std::lower_bound(stats_.layers.begin(), stats_.layers.end(), layer) - stats_.layers.begin();
  const at::Tensor per_key = sinks.sum(1).to(torch::kCPU, torch::kLong);  // [B, K] heads
  // Prompt tokens indexed from token 0 of each row.
  const at::Tensor plen = prompt_lengths_;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = plen[b].item<int64_t>();
    if (n > 0) stats_.prompt_sink_heads[b][slot].slice(0, 0, n).copy_(per_key[b].slice(0, response_begin_ - n, response_begin_));
  }
  stats_.response_sink_heads.select(1, slot).copy_(per_key.slice(1, response_begin_, K));
}

void StreamingAttentionReducer::on_chunk(const AttentionChunk& chunk) {
  const auto start = std::chrono::steady_clock::now();
  // Inside a training forward the chunk carries autograd history; the sums must not.
  torch::NoGradGuard no_grad;
  // One full forward (key_offset 0), or the responses after a shared prompt of width P.
  AR_CHECK(chunk.key_offset == 0 || chunk.key_offset == response_begin_,
           "credit: attention statistics need one full forward or a shared prompt of ", response_begin_,
           " columns (no KV cache), got a chunk after ", chunk.key_offset, " keys");
  const auto it = std::lower_bound(stats_.layers.begin(), stats_.layers.end(), chunk.layer);
  if (it == stats_.layers.end() || *it != chunk.layer) return;
  const int64_t slot = it - stats_.layers.begin();
  // [B, H, rows, K]; value_norm: each edge t -> s times |v_s| of the head, rows renormalised.
  at::Tensor raw = chunk.probs;
  if (options_.value_weighted) {
    AR_CHECK(chunk.value_norms.defined() && chunk.value_norms.size(2) == raw.size(3),
             "credit.attention_weighting value_norm: the model passed no value-vector norms with layer ", chunk.layer,
             "'s attention");
    raw = raw * chunk.value_norms.to(raw.scalar_type()).unsqueeze(2);
    raw = raw / raw.sum(-1, true).clamp_min(std::numeric_limits<float>::min());
  }
  if (!stats_.lookback_sum.defined()) allocate(raw);
  const int64_t B = raw.size(0), H = raw.size(1), rows = raw.size(2), K = raw.size(3);
  const int64_t P = response_begin_, R = response_width_;
  const int64_t q0 = chunk.key_offset + chunk.query_begin, q1 = q0 + rows;  // columns of the full sequence
  AR_CHECK(K >= q1 && K <= P + R, "credit: a chunk of rows [", q0, ", ", q1, ") sees ", K,
           " keys; expected up to prompt ", P, " + response ", R);
  AR_CHECK(!chunk.survey || options_.detect_sinks, "credit: a survey chunk reached a reducer without sink detection");
  if (!chunk.survey && options_.detect_sinks && sink_layer_ != chunk.layer) decide_sinks(chunk.layer, raw);
  if (q1 <= P || q0 >= P + R) return;  // no response rows in this chunk
  const auto fopt = raw.options();
  const auto dtype = raw.scalar_type();
  // Only the chunk's response rows [ra, rb) are read; of those, rows past a sequence's response
  // length are padding (row_valid 0).
  const int64_t ra = std::max(q0, P), rb = std::min(q1, P + R), n = rb - ra;
  const at::Tensor A = raw.slice(2, ra - q0, rb - q0);  // [B, H, n, K]
  const at::Tensor q = torch::arange(ra, rb, fopt.dtype(torch::kLong));
  const at::Tensor row_valid = (q - P).unsqueeze(0).lt(lengths_device_.unsqueeze(1)).to(dtype);  // [B, n]
  if (chunk.survey) {
    survey(A, row_valid, chunk.layer);
    seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return;
  }
  const at::Tensor valid = row_valid.unsqueeze(1);  // [B, 1, n]

  // Sinks (5.7) enter as a per-head key indicator: with exclusion every row is renormalised over
  // its non-sink keys, which is the same as weighting keys by keep_s = 1 - sink_s and dividing
  // each row by its kept mass Σ_s A keep_s (summed directly, so exact even when the sinks take
  // almost everything: a row with 1e-9 left is renormalised like any other — float32 resolves
  // such masses; only a row with nothing left counts as 0). Without exclusion keep_s = 1.
  const bool exclude = options_.exclude_sinks;
  const at::Tensor sink = options_.detect_sinks ? sinks_.slice(2, 0, K) : torch::zeros({B, H, K}, fopt);  // [B, H, K]
  const at::Tensor keep = exclude ? 1 - sink : torch::ones({B, H, K}, fopt);

  // One batched product per chunk gives every row's kept mass, the kept keys' first moment
  // (centred at the chunk, which keeps float32 cancellation small for local heads on long
  // sequences) and the raw sink mass.
  const at::Tensor offset = (torch::arange(K, fopt) - static_cast<double>(ra)).view({1, 1, K});
  const at::Tensor basis = torch::stack({keep, keep * offset, sink}, 3).view({B * H, K, 3});
  const at::Tensor moments = torch::bmm(A.reshape({B * H, n, K}), basis).view({B, H, n, 3});
  const at::Tensor mass = moments.select(3, 0), key_sum = moments.select(3, 1), sink_mass = moments.select(3, 2);
  const at::Tensor norm =
      exclude ? torch::where(mass.gt(0), 1 / mass.clamp_min(std::numeric_limits<float>::min()), torch::zeros_like(mass))
              : torch::ones_like(mass);
  const at::Tensor row_weight = norm * valid;  // [B, H, n]
  if (options_.detect_sinks) {
    const at::Tensor first = A.gather(3, first_column_.view({B, 1, 1, 1}).expand({B, H, n, 1})).squeeze(3);
    stats_.sink_mass_sum.slice(1, slot * H, (slot + 1) * H).add_((sink_mass * valid).sum(-1).to(torch::kDouble));
    stats_.first_token_mass_sum.slice(1, slot * H, (slot + 1) * H).add_((first * valid).sum(-1).to(torch::kDouble));
  }

  // Look-back distance (5.2): Σ_s Â[q,s](q-s) = ((q-ra) Σ_s A keep - Σ_s A keep (s-ra)) / mass.
  const at::Tensor q_local = torch::arange(n, fopt);
  const at::Tensor lookback = (q_local * mass - key_sum) * row_weight;  // [B, H, n]
  // WAAD numerators (5.3): Σ_s Â min(q-s, W) = (W mass - Σ_{q-W < s <= q} A keep (W - (q-s))) / mass:
  // only the band of the last W keys of each row is read.
  const int64_t W = options_.window;
  const int64_t k0 = std::max<int64_t>(0, ra - W + 1), k1 = std::min(rb, K);
  const at::Tensor band_gap = q.to(dtype).unsqueeze(1) - torch::arange(k0, k1, fopt).unsqueeze(0);  // [n, kw]
  const at::Tensor band_weight = (static_cast<double>(W) - band_gap).clamp_min(0) * band_gap.ge(0).to(dtype);
  const at::Tensor near = (A.slice(3, k0, k1) * band_weight * keep.slice(2, k0, k1).unsqueeze(2)).sum(-1);
  const at::Tensor waad = (static_cast<double>(W) * mass - near) * row_weight;
  stats_.lookback_sum.slice(1, slot * H, (slot + 1) * H).add_(lookback.sum(-1).to(torch::kDouble));
  stats_.waad_heads.slice(1, slot * H, (slot + 1) * H).slice(2, ra - P, rb - P).add_(waad.to(torch::kDouble));

  // FAI column sums (5.3): key s gets rows t with H_lo <= t - s <= H_hi, each row divided by its
  // kept mass; for this chunk only the response keys in [ra - H_hi, rb - 1 - H_lo] can qualify.
  const int64_t c0 = std::max(P, ra - options_.horizon_high), c1 = std::min(P + R, rb - options_.horizon_low);
  if (c0 < c1) {
    const at::Tensor gap = q.to(dtype).unsqueeze(1) - torch::arange(c0, c1, fopt).unsqueeze(0);  // [n, cw]
    const at::Tensor band = gap.ge(static_cast<double>(options_.horizon_low))
                                .logical_and(gap.le(static_cast<double>(options_.horizon_high)))
                                .to(dtype);
    const at::Tensor weight = band * row_weight.unsqueeze(3) * keep.slice(2, c0, c1).unsqueeze(2);  // [B, H, n, cw]
    const at::Tensor fai = (A.slice(3, c0, c1) * weight).sum(2);  // [B, H, cw]
    stats_.fai_sums.slice(1, slot * H, (slot + 1) * H).slice(2, c0 - P, c1 - P).add_(fai.to(torch::kDouble));
  }

  // Sentence block sums (5.6): keys summed per sentence, then rows summed per sentence.
  if (sentence_onehot_.defined()) {
    const int64_t S = num_sentences_;
    const at::Tensor p = exclude ? A * keep.unsqueeze(2) * norm.unsqueeze(3) : A;  // [B, H, n, K]
    const at::Tensor per_key =
        torch::matmul(p.reshape({B, H * n, K}), sentence_onehot_.slice(1, 0, K)).view({B, H, n, S});
    const at::Tensor rows_onehot = sentence_onehot_.slice(1, ra, rb).transpose(1, 2).unsqueeze(1);  // [B, 1, S, n]
    stats_.block_sums.slice(1, slot * H, (slot + 1) * H).add_(torch::matmul(rows_onehot, per_key).to(torch::kDouble));
  }
  seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

AttentionStatistics StreamingAttentionReducer::finish() {
  if (!stats_.lookback_sum.defined()) zero_sums(torch::TensorOptions().dtype(torch::kDouble));  // nothing observed
  AttentionStatistics out = stats_;
  out.lookback_sum = out.lookback_sum.cpu();
  out.waad_heads = out.waad_heads.cpu();
  out.fai_sums = out.fai_sums.cpu();
  out.sink_mass_sum = out.sink_mass_sum.cpu();
  out.first_token_mass_sum = out.first_token_mass_sum.cpu();
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
  int64_t Pmax = 0;
  for (const auto& p : parts) Pmax = std::max(Pmax, p.prompt_sink_heads.size(-1));
  std::vector<at::Tensor> lengths, lookback, waad, fai, blocks, sizes, sink_mass, first_mass, prompt_sinks,
      response_sinks;
  for (const auto& p : parts) {
    AR_CHECK(p.layers == parts.front().layers && p.heads == parts.front().heads &&
                 p.sinks_excluded == parts.front().sinks_excluded,
             "credit: statistics of different layer sets or sink modes cannot be concatenated");
    lengths.push_back(p.response_lengths);
    lookback.push_back(p.lookback_sum);
    waad.push_back(pad_last(p.waad_heads, R));
    fai.push_back(pad_last(p.fai_sums, R));
    sink_mass.push_back(p.sink_mass_sum);
    first_mass.push_back(p.first_token_mass_sum);
    prompt_sinks.push_back(pad_last(p.prompt_sink_heads, Pmax));
    response_sinks.push_back(pad_last(p.response_sink_heads, R));
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
  out.sinks_detected = parts.front().sinks_detected;
  out.sinks_excluded = parts.front().sinks_excluded;
  out.sink_mass_sum = torch::cat(sink_mass);
  out.first_token_mass_sum = torch::cat(first_mass);
  out.prompt_sink_heads = torch::cat(prompt_sinks);
  out.response_sink_heads = torch::cat(response_sinks);
  if (sentences) {
    out.block_sums = torch::cat(blocks);
    out.sentence_sizes = torch::cat(sizes);
  }
  return out;
}

AttentionStatistics select_layers(const AttentionStatistics& stats, const std::vector<int64_t>& layers) {
  AR_CHECK(!layers.empty() && std::is_sorted(layers.begin(), layers.end()), "credit: layers to select must be sorted");
  std::vector<int64_t> slots, heads;
  for (int64_t l : layers) {
    const auto it = std::lower_bound(stats.layers.begin(), stats.layers.end(), l);
    AR_CHECK(it != stats.layers.end() && *it == l, "credit: layer ", l, " was not observed");
    const int64_t slot = it - stats.layers.begin();
    slots.push_back(slot);
    for (int64_t h = 0; h < stats.heads; ++h) heads.push_back(slot * stats.heads + h);
  }
  const at::Tensor s = torch::tensor(slots, torch::kLong), j = torch::tensor(heads, torch::kLong);
  AttentionStatistics out = stats;
  out.layers = layers;
  out.lookback_sum = stats.lookback_sum.index_select(1, j);
  out.waad_heads = stats.waad_heads.index_select(1, j);
  out.fai_sums = stats.fai_sums.index_select(1, j);
  if (stats.block_sums.defined()) out.block_sums = stats.block_sums.index_select(1, j);
  out.sink_mass_sum = stats.sink_mass_sum.index_select(1, j);
  out.first_token_mass_sum = stats.first_token_mass_sum.index_select(1, j);
  out.prompt_sink_heads = stats.prompt_sink_heads.index_select(1, s);
  out.response_sink_heads = stats.response_sink_heads.index_select(1, s);
  return out;
}

AttentionStatistics select_rows(const AttentionStatistics& stats, const at::Tensor& rows) {
  AttentionStatistics out = stats;
  auto pick = [&](const at::Tensor& t) { return t.defined() ? t.index_select(0, rows) : t; };
  out.response_lengths = pick(stats.response_lengths);
  out.lookback_sum = pick(stats.lookback_sum);
  out.waad_heads = pick(stats.waad_heads);
  out.fai_sums = pick(stats.fai_sums);
  out.block_sums = pick(stats.block_sums);
  out.sentence_sizes = pick(stats.sentence_sizes);
  out.sink_mass_sum = pick(stats.sink_mass_sum);
  out.first_token_mass_sum = pick(stats.first_token_mass_sum);
  out.prompt_sink_heads = pick(stats.prompt_sink_heads);
  out.response_sink_heads = pick(stats.response_sink_heads);
  return out;
}

}  // namespace anchor::credit
