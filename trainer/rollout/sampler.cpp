#include "trainer/rollout/sampler.h"

#include <ATen/record_function.h>
#include <torch/torch.h>

#include <algorithm>
#include <limits>
#include <map>

#include "trainer/common/error.h"
#include "trainer/common/splitmix.h"

namespace anchor {

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::stop_token: return "stop_token";
    case FinishReason::stop_string: return "stop_string";
    case FinishReason::length: return "length";
  }
  return "?";
}

namespace {

// One token per row of an unnormalised running sum cdf [B, V]: a uniform draw scaled by the
// row's total, then the first entry strictly above it (zero-probability tokens have empty
// intervals and are never chosen).
at::Tensor draw_from_cdf(const at::Tensor& cdf, const at::Tensor& uniforms) {
  const int64_t V = cdf.size(-1);
  const at::Tensor total = cdf.select(-1, V - 1).unsqueeze(-1);  // [B, 1]
  const at::Tensor draw = uniforms.to(torch::kFloat).reshape({cdf.size(0), 1}) * total;
  return torch::searchsorted(cdf, draw, /*out_int32=*/false, /*right=*/true).squeeze(-1).clamp_max(V - 1);
}

}  // namespace

int64_t decode_batch_size(int64_t live_rows) {
  if (live_rows <= 8) return live_rows;
  int64_t octave = 8;
  while (octave * 2 <= live_rows) octave *= 2;  // octave <= live_rows < 2 * octave
  const int64_t step = octave / 4;
  return (live_rows + step - 1) / step * step;
}

uint64_t stream_seed(uint64_t seed, uint64_t stream) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull ^ (stream + 1) * 0xBF58476D1CE4E5B9ull;
  x ^= x >> 31;
  x *= 0xD6E8FEB86659FD93ull;
  return x ^ (x >> 29);
}

at::Tensor stream_uniforms(uint64_t seed, const std::vector<int64_t>& streams, int64_t position) {
  at::Tensor out = torch::empty({static_cast<int64_t>(streams.size())}, torch::kFloat);
  float* u = out.data_ptr<float>();
  for (size_t i = 0; i < streams.size(); ++i) {
    // splitmix64 of (stream seed, position): a counter-based generator, so a row's draws depend
    // on nothing but its own stream and position.
    const uint64_t z = splitmix64_mix(stream_seed(seed, static_cast<uint64_t>(streams[i])) +
                                      (static_cast<uint64_t>(position) + 1) * 0x9E3779B97F4A7C15ull);
    u[i] = static_cast<float>(z >> 40) * 0x1.0p-24f;  // 24 random bits: exact floats in [0, 1)
  }
  return out;
}

std::pair<at::Tensor, at::Tensor> sample_next_tokens(const at::Tensor& logits_in, const SamplingParams& params,
                                                     const at::Tensor& uniforms, int64_t sampleable_vocab) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  at::Tensor logits = logits_in.to(torch::kCPU, torch::kFloat);  // [B, V]; a copy only if needed
  // Rows of the embedding beyond the tokenizer's vocabulary (padding) are not tokens: the first
  // sampleable_vocab columns are the whole choice.
  if (sampleable_vocab > 0 && sampleable_vocab < logits.size(1)) logits = logits.slice(1, 0, sampleable_vocab);
  const int64_t V = logits.size(1);
  if (params.steer_token_id >= 0 && params.steer_token_id < V && !params.steered_token_ids.empty()) {
    std::vector<int64_t> steered;
    for (int64_t id : params.steered_token_ids)
      if (id >= 0 && id < V) steered.push_back(id);
    const at::Tensor ids = torch::tensor(steered, torch::kLong);
    const at::Tensor merged = logits.index_select(1, ids).logsumexp(1, /*keepdim=*/true);  // [B, 1]
    logits = logits.index_fill(1, ids, kNegInf)
                 .index_copy(1, torch::tensor({params.steer_token_id}, torch::kLong), merged);
  }
  if (!params.banned_token_ids.empty()) {
    std::vector<int64_t> banned;
    for (int64_t id : params.banned_token_ids)
      if (id >= 0 && id < V) banned.push_back(id);
    logits = logits.index_fill(1, torch::tensor(banned, torch::kLong), kNegInf);
  }
  const bool greedy = params.temperature <= 0.0;
  at::Tensor scaled = greedy || params.temperature == 1.0 ? logits : logits / params.temperature;
  at::Tensor tokens;
  const bool truncated = (params.top_k > 0 && params.top_k < V) || params.top_p < 1.0;
  if (greedy) {
    // argmax, and the log-probability of the chosen token at temperature 1 from one softmax.
    const auto [top, index] = torch::softmax(logits, -1).max(-1);
    return {index, top.log()};
  }
  if (!truncated) {
    // The rollout path: probabilities in one fused softmax, then inverse-CDF sampling — one
    // uniform draw per row against the running sum; tokens of probability 0 (banned, or
    // underflowed) have empty intervals and are never chosen (searchsorted finds the first
    // running sum strictly above the draw). Few passes over [B, V]: the step is memory-bound.
    const at::Tensor probs = torch::softmax(scaled, -1);                                      // [B, V]
    tokens = draw_from_cdf(probs.cumsum(-1), uniforms);
    return {tokens, probs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1).log()};
  }
  // top-k / top-p: log p(token) = scaled[token] - logsumexp(scaled), under the untruncated
  // distribution.
  const at::Tensor log_normalizer = torch::logsumexp(scaled, -1, /*keepdim=*/true);  // [B, 1]
  {
    at::Tensor filtered = scaled;
    if (params.top_k > 0 && params.top_k < V) {
      at::Tensor kth = std::get<0>(filtered.topk(params.top_k, -1)).select(-1, params.top_k - 1).unsqueeze(-1);
      filtered = filtered.masked_fill(filtered < kth, kNegInf);
    }
    if (params.top_p < 1.0) {
      // Keep the smallest prefix of tokens (by probability) whose mass reaches top_p.
      auto [sorted, order] = filtered.sort(-1, /*descending=*/true);
      at::Tensor probs = torch::softmax(sorted, -1);
      at::Tensor mass_before = probs.cumsum(-1) - probs;
      at::Tensor drop_sorted = mass_before >= params.top_p;
      drop_sorted.select(-1, 0).fill_(false);
      at::Tensor drop = torch::zeros_like(drop_sorted).scatter(-1, order, drop_sorted);
      filtered = filtered.masked_fill(drop, kNegInf);
    }
    // Inverse-CDF sampling over the truncated distribution (as above).
    const at::Tensor shift = torch::logsumexp(filtered, -1, true);
    // Log-probabilities below -80 (p < 2e-35) count as 0: their exp would be a denormal float,
    // which makes the running sum ~10x slower on x86, for a total mass below 1e-30.
    at::Tensor log_p = filtered - shift;
    log_p.masked_fill_(log_p < -80.0f, kNegInf);
    tokens = draw_from_cdf(log_p.exp_().cumsum(-1), uniforms);
  }
  at::Tensor logprobs = (scaled.gather(-1, tokens.unsqueeze(-1)) - log_normalizer).squeeze(-1);
  return {tokens, logprobs};
}

RolloutBatch generate(const LlamaModel& model, const Tokenizer& tokenizer,
                      const std::vector<std::vector<int64_t>>& prompts, const SamplingParams& params) {
  AR_CHECK(!prompts.empty(), "generate: no prompts");
  AR_CHECK(params.max_new_tokens >= 1, "generate: max_new_tokens must be at least 1, got ", params.max_new_tokens);
  AR_CHECK(params.top_p > 0.0 && params.top_p <= 1.0, "generate: top_p must be in (0, 1], got ", params.top_p);
  AR_CHECK(params.top_k >= 0, "generate: top_k must be >= 0, got ", params.top_k);
  AR_CHECK(params.temperature >= 0.0, "generate: temperature must be >= 0, got ", params.temperature);
  const LlamaConfig& config = model.config();
  const int64_t B = static_cast<int64_t>(prompts.size());
  int64_t P = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    AR_CHECK(!prompts[i].empty(), "generate: prompt ", i, " is empty (add BOS or text)");
    for (int64_t id : prompts[i])
      AR_CHECK(id >= 0 && id < config.vocab_size, "generate: prompt ", i, " has token id ", id,
               " outside the model vocabulary [0, ", config.vocab_size, ")");
    P = std::max<int64_t>(P, static_cast<int64_t>(prompts[i].size()));
  }
  // The KV cache and the position embeddings end at max_position_embeddings.
  AR_CHECK(P + params.max_new_tokens <= config.max_position_embeddings, "generate: a prompt of ", P,
           " tokens + max_new_tokens ", params.max_new_tokens, " exceeds the model's ", config.max_position_embeddings,
           " positions");
  std::vector<int64_t> stop_ids = params.stop_token_ids;
  if (stop_ids.empty()) {
    stop_ids = config.stop_token_ids();
    if (tokenizer.eos_id() >= 0) stop_ids.push_back(tokenizer.eos_id());
  }
  const int64_t pad_id = tokenizer.padding_id();
  const at::Device device = model.device();
  const auto long_cpu = torch::TensorOptions().dtype(torch::kLong);

  // Left-pad the prompts so every row's last prompt token sits in the last column.
  at::Tensor prompt_ids = torch::full({B, P}, pad_id, long_cpu);
  at::Tensor prompt_mask = torch::zeros({B, P}, torch::kBool);
  for (int64_t b = 0; b < B; ++b) {
    const auto& p = prompts[static_cast<size_t>(b)];
    const int64_t n = static_cast<int64_t>(p.size());
    prompt_ids[b].slice(0, P - n).copy_(torch::tensor(p, long_cpu));
    prompt_mask[b].slice(0, P - n).fill_(true);
  }

  AR_CHECK(params.streams.empty() || static_cast<int64_t>(params.streams.size()) == B, "generate: ",
           params.streams.size(), " random streams for ", B, " prompts");
  const int64_t R = params.max_new_tokens;
  at::Tensor out_ids = torch::full({B, R}, pad_id, long_cpu);
  at::Tensor out_logprobs = torch::zeros({B, R}, torch::kFloat);
  std::vector<int64_t> lengths(static_cast<size_t>(B), 0);
  std::vector<FinishReason> reasons(static_cast<size_t>(B), FinishReason::length);
  std::vector<std::string> texts(static_cast<size_t>(B));

  // The decode batch: `rows[i]` is the original batch index of slot i, `live[i]` whether that
  // row is still running. Finished rows stay in the batch as padding until the live ones fit a
  // smaller decode_batch_size (see sampler.h); their tokens are drawn and thrown away.
  std::vector<int64_t> rows(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) rows[static_cast<size_t>(b)] = b;
  std::vector<char> live(static_cast<size_t>(B), 1);
  int64_t live_count = B;
  at::Tensor key_mask = prompt_mask.to(device);                                 // [B_active, S]
  at::Tensor next_pos = prompt_mask.to(torch::kLong).sum(1).to(device);         // [B_active]
  at::Tensor sequence = prompt_ids.to(device);                                  // full-recompute path
  KVCache cache;
  at::Tensor logits;
  // Inference mode skips autograd bookkeeping (version counters, views) on every op of the
  // decode loop. Tensors made here are cloned before they leave (see below), because the
  // trainer later feeds them to autograd, which refuses inference tensors.
  std::optional<c10::InferenceMode> inference_mode(std::in_place);
  // Under mixed precision, one autocast scope for the whole loop: each weight is cast once.
  const ComputeScope compute_scope = model.compute_scope();
  // On CPU, weights prepacked for skinny GEMMs, once for the whole call (decode_weights.h).
  const std::shared_ptr<const DecodeWeights> packed = params.use_cache ? model.pack_for_decode(B, params.merge_adapters) : nullptr;
  if (params.use_cache) {
    // Shared prefill: rows with the same prompt (the G samples of an RL group, --num-samples)
    // are prefilled once; the cache rows and last logits are then copied to every row.
    std::map<std::vector<int64_t>, int64_t> unique_index;
    std::vector<int64_t> first_row, row_to_unique;
    for (int64_t b = 0; b < B; ++b) {
      if (!params.share_prefill) {
        row_to_unique.push_back(static_cast<int64_t>(first_row.size()));
        first_row.push_back(b);
        continue;
      }
      const auto [it, fresh] = unique_index.emplace(prompts[static_cast<size_t>(b)], static_cast<int64_t>(first_row.size()));
      if (fresh) first_row.push_back(b);
      row_to_unique.push_back(it->second);
    }
    const int64_t U = static_cast<int64_t>(first_row.size());
    const at::Tensor unique_rows = torch::tensor(first_row, long_cpu);
    cache = model.make_cache(U, P + R);
    ForwardInputs in = padded_batch_inputs(prompt_ids.index_select(0, unique_rows).to(device),
                                           prompt_mask.index_select(0, unique_rows).to(device));
    in.cache = &cache;
    // Prefill GEMMs are fat (rows x prompt length) and their shape changes every call: the
    // plain path, because every new shape through the packed one leaves a oneDNN primitive in
    // its cache (resident memory grew by ~0.5 GB over 40 calls on the demo model).
    in.packed = nullptr;
    // Only the last position's logits are needed: projecting every prompt position onto the
    // vocabulary first cost [rows, P, vocab] floats (8.6 GB for 256 SmolLM2 prompts of 170
    // tokens, the peak of a held-out evaluation).
    logits = model.logits(model.hidden_states(in).select(1, P - 1));
    if (U < B) {
      const at::Tensor expand = torch::tensor(row_to_unique, long_cpu).to(device);
      cache.select_rows(expand);
      logits = logits.index_select(0, expand);
    }
  } else {
    logits = model.logits(model.hidden_states(padded_batch_inputs(sequence, key_mask)).select(1, P - 1));
  }

  for (int64_t step = 0; step < R && live_count > 0; ++step) {
    std::vector<int64_t> streams;
    for (int64_t b : rows) streams.push_back(params.streams.empty() ? b : params.streams[static_cast<size_t>(b)]);
    RECORD_USER_SCOPE("decode::sample");  // profiler scope (generate --profile): sampling + bookkeeping
    auto [tokens, logprobs] =
        sample_next_tokens(logits, params, stream_uniforms(params.seed, streams, step), tokenizer.vocab_size());
    const int64_t* tok = tokens.data_ptr<int64_t>();
    const float* lp = logprobs.data_ptr<float>();
    int64_t* ids_out = out_ids.data_ptr<int64_t>();
    float* logprobs_out = out_logprobs.data_ptr<float>();
    for (size_t i = 0; i < rows.size(); ++i) {
      if (!live[i]) continue;
      const int64_t b = rows[i];
      ids_out[b * R + step] = tok[i];
      if (params.on_token) params.on_token(b, tok[i]);
      logprobs_out[b * R + step] = lp[i];
      lengths[static_cast<size_t>(b)] = step + 1;
      bool done = false;
      if (std::find(stop_ids.begin(), stop_ids.end(), tok[i]) != stop_ids.end()) {
        reasons[static_cast<size_t>(b)] = FinishReason::stop_token;
        done = true;
      } else if (!params.stop_strings.empty()) {
        const std::string text =
            tokenizer.decode(std::vector<int64_t>(ids_out + b * R, ids_out + b * R + step + 1));
        for (const std::string& stop : params.stop_strings) {
          const size_t at = text.find(stop);
          if (at == std::string::npos) continue;
          if (!done || at + stop.size() < texts[static_cast<size_t>(b)].size())
            texts[static_cast<size_t>(b)] = text.substr(0, at + stop.size());
          reasons[static_cast<size_t>(b)] = FinishReason::stop_string;
          done = true;
        }
      }
      if (done) {
        live[i] = 0;
        --live_count;
      }
    }
    if (step + 1 == R || live_count == 0) break;

    at::Tensor next = tokens.to(device).unsqueeze(1);  // [B_slots, 1]
    const int64_t target = decode_batch_size(live_count);
    if (target < static_cast<int64_t>(rows.size())) {
      // The live slots and the first finished ones as padding, in slot order.
      std::vector<int64_t> keep;
      int64_t padding = target - live_count;
      for (size_t i = 0; i < rows.size(); ++i)
        if (live[i] || padding-- > 0) keep.push_back(static_cast<int64_t>(i));
      at::Tensor sel = torch::tensor(keep, long_cpu).to(device);
      next = next.index_select(0, sel);
      key_mask = key_mask.index_select(0, sel);
      next_pos = next_pos.index_select(0, sel);
      sequence = sequence.index_select(0, sel);
      if (params.use_cache) cache.select_rows(sel);
      std::vector<int64_t> kept_rows;
      std::vector<char> kept_live;
      for (int64_t i : keep) {
        kept_rows.push_back(rows[static_cast<size_t>(i)]);
        kept_live.push_back(live[static_cast<size_t>(i)]);
      }
      rows = std::move(kept_rows);
      live = std::move(kept_live);
    }
    key_mask = torch::cat({key_mask, torch::ones({key_mask.size(0), 1}, key_mask.options())}, 1);
    if (params.use_cache) {
      RECORD_USER_SCOPE("decode::forward");
      ForwardInputs in;
      in.input_ids = next;
      in.position_ids = next_pos.unsqueeze(1);
      in.key_mask = key_mask;
      in.cache = &cache;
      in.packed = packed.get();
      logits = model.forward(in).select(1, 0);
    } else {
      sequence = torch::cat({sequence, next}, 1);
      logits = model.logits(model.hidden_states(padded_batch_inputs(sequence, key_mask)).select(1, -1));
    }
    next_pos = next_pos + 1;
  }

  inference_mode.reset();
  RolloutBatch batch;
  int64_t max_len = 0;
  for (int64_t n : lengths) max_len = std::max(max_len, n);
  batch.prompt_ids = prompt_ids.clone();
  batch.prompt_mask = prompt_mask.clone();
  batch.response_ids = out_ids.slice(1, 0, max_len).clone();
  batch.sampling_logprobs = out_logprobs.slice(1, 0, max_len).clone();
  batch.response_mask = torch::zeros({B, max_len}, torch::kBool);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = lengths[static_cast<size_t>(b)];
    batch.response_mask[b].slice(0, 0, n).fill_(true);
    if (reasons[static_cast<size_t>(b)] != FinishReason::stop_string) {
      const auto ids = batch.response_ids[b];
      texts[static_cast<size_t>(b)] =
          tokenizer.decode(std::vector<int64_t>(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + n));
    }
    batch.generated_tokens += n;
  }
  batch.response_texts = std::move(texts);
  batch.finish_reasons = std::move(reasons);
  batch.pad_id = pad_id;
  return batch;
}

RolloutBatch generate_in_chunks(const LlamaModel& model, const Tokenizer& tokenizer,
                                const std::vector<std::vector<int64_t>>& prompts, const SamplingParams& params,
                                int64_t rows_per_call) {
  const int64_t B = static_cast<int64_t>(prompts.size());
  if (rows_per_call <= 0 || rows_per_call >= B) return generate(model, tokenizer, prompts, params);
  std::vector<RolloutBatch> pieces;
  for (int64_t r0 = 0; r0 < B; r0 += rows_per_call) {
    const int64_t r1 = std::min(B, r0 + rows_per_call);
    SamplingParams p = params;
    p.streams.clear();
    for (int64_t b = r0; b < r1; ++b) p.streams.push_back(params.streams.empty() ? b : params.streams[static_cast<size_t>(b)]);
    if (params.on_token) p.on_token = [&params, r0](int64_t row, int64_t token) { params.on_token(r0 + row, token); };
    pieces.push_back(generate(model, tokenizer, {prompts.begin() + r0, prompts.begin() + r1}, p));
  }
  int64_t P = 0, R = 0;
  for (const RolloutBatch& b : pieces) {
    P = std::max(P, b.prompt_ids.size(1));
    R = std::max(R, b.response_ids.size(1));
  }
  RolloutBatch out;
  out.pad_id = pieces.front().pad_id;
  // Prompts padded on the left (every row ends in the last column), responses on the right.
  auto pad = [](const at::Tensor& t, int64_t width, bool left, double value) {
    const int64_t extra = width - t.size(1);
    if (extra == 0) return t;
    const at::Tensor fill = torch::full({t.size(0), extra}, value, t.options());
    return left ? torch::cat({fill, t}, 1) : torch::cat({t, fill}, 1);
  };
  std::vector<at::Tensor> prompt_ids, prompt_mask, response_ids, response_mask, logprobs;
  const double pad_id = static_cast<double>(out.pad_id);
  for (RolloutBatch& b : pieces) {
    prompt_ids.push_back(pad(b.prompt_ids, P, true, pad_id));
    prompt_mask.push_back(pad(b.prompt_mask, P, true, 0));
    response_ids.push_back(pad(b.response_ids, R, false, pad_id));
    response_mask.push_back(pad(b.response_mask, R, false, 0));
    logprobs.push_back(pad(b.sampling_logprobs, R, false, 0));
    out.response_texts.insert(out.response_texts.end(), b.response_texts.begin(), b.response_texts.end());
    out.finish_reasons.insert(out.finish_reasons.end(), b.finish_reasons.begin(), b.finish_reasons.end());
    out.generated_tokens += b.generated_tokens;
  }
  out.prompt_ids = torch::cat(prompt_ids);
  out.prompt_mask = torch::cat(prompt_mask);
  out.response_ids = torch::cat(response_ids);
  out.response_mask = torch::cat(response_mask);
  out.sampling_logprobs = torch::cat(logprobs);
  return out;
}

}  // namespace anchor
