#include "trainer/sft/context_dependency.h"

#include <torch/torch.h>

#include <algorithm>

#include "trainer/common/error.h"
#include "trainer/model/pretrained.h"

namespace anchor::sft {

at::Tensor context_dependency_scores(const at::Tensor& probs, const at::Tensor& user_keys,
                                     const at::Tensor& response_queries) {
  AR_CHECK(probs.dim() == 4 && probs.size(2) == probs.size(3), "context_dependency_scores: probs must be [B, H, N, N]");
  const at::Tensor p = probs.to(torch::kDouble);
  const at::Tensor user = user_keys.to(torch::kDouble);
  const at::Tensor queries = response_queries.to(torch::kDouble);
  const at::Tensor mass = (p * user.unsqueeze(1).unsqueeze(1)).sum(-1);  // [B, H, N]
  const at::Tensor best = std::get<0>(mass.max(1));                       // [B, N]
  const at::Tensor count = queries.sum(1);
  return (best * queries).sum(1) / count.clamp_min(1.0);
}

ContextDependencyObserver::ContextDependencyObserver(int64_t layer, at::Tensor user_keys, at::Tensor response_queries)
    : layer_(layer),
      user_keys_(user_keys.to(torch::kFloat)),
      response_queries_(response_queries.to(torch::kFloat)),
      sums_(torch::zeros({user_keys.size(0)}, user_keys.options().dtype(torch::kDouble))) {}

void ContextDependencyObserver::on_chunk(const AttentionChunk& chunk) {
  if (chunk.survey) return;
  const int64_t keys = chunk.probs.size(-1);
  const int64_t rows = chunk.probs.size(2);
  const int64_t first = chunk.key_offset + chunk.query_begin;
  const at::Tensor user = user_keys_.slice(1, 0, keys).to(chunk.probs.device());            // [B, K]
  const at::Tensor mass = torch::einsum("bhrk,bk->bhr", {chunk.probs.to(torch::kFloat), user});  // [B, H, rows]
  const at::Tensor best = std::get<0>(mass.max(1));                                          // [B, rows]
  const at::Tensor queries = response_queries_.slice(1, first, first + rows).to(best.device());
  sums_ += (best * queries).sum(1).to(torch::kDouble).to(sums_.device());
}

at::Tensor ContextDependencyObserver::scores() const {
  return sums_ / response_queries_.sum(1).to(torch::kDouble).clamp_min(1.0);
}

ScoredTurn scored_turn_tokens(const Tokenizer& tokenizer, const data::ChatTemplate& chat, const std::string& user,
                              const std::string& response) {
  const std::string prompt = chat.apply(user);
  const size_t user_begin = prompt.rfind(user);
  AR_CHECK(user_begin != std::string::npos, "context indicator: the chat template's rendering does not contain the "
           "user message verbatim (", chat.describe(), ")");
  const size_t user_end = user_begin + user.size();
  const std::string text = prompt + response;
  const Encoding enc = tokenizer.encode_with_spans(text, chat.encode_with_special_tokens());
  ScoredTurn t;
  t.ids = enc.ids;
  for (const auto& [b, e] : enc.spans) {
    const bool real = e > b;  // BOS and other tokens the text does not contain have empty spans
    t.user.push_back(real && b >= user_begin && b < user_end ? 1 : 0);
    t.response.push_back(real && b >= prompt.size() ? 1 : 0);
  }
  return t;
}

std::vector<double> score_context_dependency(const LlamaModel& model, const std::vector<ScoredTurn>& turns,
                                             int64_t layer, int64_t batch_size) {
  const int64_t layers = model.config().num_hidden_layers;
  if (layer < 0) layer = layers / 2;
  AR_CHECK(layer < layers, "sft.context_indicator.layer: ", layer, " is not a layer of the seed model (it has ",
           layers, ")");
  torch::NoGradGuard no_grad;
  const ComputeScope scope = model.compute_scope();
  std::vector<double> out;
  const auto device = model.device();
  for (size_t start = 0; start < turns.size(); start += static_cast<size_t>(batch_size)) {
    const size_t end = std::min(turns.size(), start + static_cast<size_t>(batch_size));
    int64_t n = 0;
    for (size_t i = start; i < end; ++i) {
      AR_CHECK(static_cast<int64_t>(turns[i].ids.size()) <= model.config().max_position_embeddings,
               "context indicator: turn ", i, " has ", turns[i].ids.size(), " tokens, more than the seed model's ",
               model.config().max_position_embeddings, " positions");
      n = std::max<int64_t>(n, static_cast<int64_t>(turns[i].ids.size()));
    }
    const int64_t b = static_cast<int64_t>(end - start);
    std::vector<int64_t> ids(static_cast<size_t>(b * n), 0);
    std::vector<uint8_t> mask(ids.size(), 0), user(ids.size(), 0), response(ids.size(), 0);
    for (int64_t r = 0; r < b; ++r) {
      const ScoredTurn& t = turns[start + static_cast<size_t>(r)];
      const size_t row = static_cast<size_t>(r * n);
      std::copy(t.ids.begin(), t.ids.end(), ids.begin() + static_cast<long>(row));
      std::fill_n(mask.begin() + static_cast<long>(row), t.ids.size(), 1);
      std::copy(t.user.begin(), t.user.end(), user.begin() + static_cast<long>(row));
      std::copy(t.response.begin(), t.response.end(), response.begin() + static_cast<long>(row));
    }
    auto bools = [&](std::vector<uint8_t>& v) {
      return torch::from_blob(v.data(), {b, n}, torch::kUInt8).to(device, torch::kBool);
    };
    const at::Tensor ids_t = torch::from_blob(ids.data(), {b, n}, torch::kLong).to(device);
    ForwardInputs in = padded_batch_inputs(ids_t, bools(mask));
    ContextDependencyObserver observer(layer, bools(user), bools(response));
    in.observer = &observer;
    (void)model.hidden_states(in);
    const at::Tensor s = observer.scores().cpu();
    for (int64_t r = 0; r < b; ++r) out.push_back(s[r].item<double>());
  }
  return out;
}

}  // namespace anchor::sft
