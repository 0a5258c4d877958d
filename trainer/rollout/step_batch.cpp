#include "trainer/rollout/step_batch.h"

#include <torch/torch.h>

#include "trainer/common/error.h"

namespace anchor {

StepBatch pad_sequences(const std::vector<const std::vector<int64_t>*>& prompts,
                        const std::vector<const std::vector<int64_t>*>& responses, int64_t pad_id) {
  AR_CHECK(prompts.size() == responses.size(), "pad_sequences: ", prompts.size(), " prompts but ", responses.size(),
           " responses");
  const int64_t N = static_cast<int64_t>(prompts.size());
  int64_t P = 1, R = 1;
  for (int64_t i = 0; i < N; ++i) {
    P = std::max<int64_t>(P, static_cast<int64_t>(prompts[static_cast<size_t>(i)]->size()));
    R = std::max<int64_t>(R, static_cast<int64_t>(responses[static_cast<size_t>(i)]->size()));
  }
  StepBatch b;
  b.prompt_ids = torch::full({N, P}, pad_id, torch::kLong);
  b.prompt_mask = torch::zeros({N, P}, torch::kBool);
  b.response_ids = torch::full({N, R}, pad_id, torch::kLong);
  b.response_mask = torch::zeros({N, R}, torch::kBool);
  auto pid = b.prompt_ids.accessor<int64_t, 2>();
  auto pm = b.prompt_mask.accessor<bool, 2>();
  auto rid = b.response_ids.accessor<int64_t, 2>();
  auto rm = b.response_mask.accessor<bool, 2>();
  for (int64_t i = 0; i < N; ++i) {
    const auto& prompt = *prompts[static_cast<size_t>(i)];
    const auto& response = *responses[static_cast<size_t>(i)];
    const int64_t off = P - static_cast<int64_t>(prompt.size());
    for (size_t t = 0; t < prompt.size(); ++t) {
      pid[i][off + static_cast<int64_t>(t)] = prompt[t];
      pm[i][off + static_cast<int64_t>(t)] = true;
    }
    for (size_t t = 0; t < response.size(); ++t) {
      rid[i][static_cast<int64_t>(t)] = response[t];
      rm[i][static_cast<int64_t>(t)] = true;
    }
  }
  return b;
}

StepBatch select_rows(const StepBatch& b, const at::Tensor& rows) {
  StepBatch out{b.prompt_ids.index_select(0, rows), b.prompt_mask.index_select(0, rows),
                b.response_ids.index_select(0, rows), b.response_mask.index_select(0, rows)};
  const int64_t first_prompt = out.prompt_mask.any(0).to(torch::kLong).argmax().item<int64_t>();
  const int64_t response_len = std::max<int64_t>(1, out.response_mask.sum(1).max().item<int64_t>());
  out.prompt_ids = out.prompt_ids.slice(1, first_prompt);
  out.prompt_mask = out.prompt_mask.slice(1, first_prompt);
  out.response_ids = out.response_ids.slice(1, 0, response_len);
  out.response_mask = out.response_mask.slice(1, 0, response_len);
  return out;
}

}  // namespace anchor
