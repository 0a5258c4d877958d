#include "trainer/optim/adamw_state.h"

#include <torch/torch.h>

#include "trainer/common/error.h"

namespace anchor {

NamedTensors adamw_state_tensors(torch::optim::AdamW& optimizer, const NamedTensors& parameters) {
  NamedTensors out;
  auto& state = optimizer.state();
  for (const auto& [name, param] : parameters) {
    auto it = state.find(param.unsafeGetTensorImpl());
    if (it == state.end()) continue;
    auto& s = static_cast<torch::optim::AdamWParamState&>(*it->second);
    out.emplace_back(name + ".exp_avg", s.exp_avg());
    out.emplace_back(name + ".exp_avg_sq", s.exp_avg_sq());
    out.emplace_back(name + ".step", torch::tensor(s.step(), torch::kLong));
  }
  return out;
}

void load_adamw_state(torch::optim::AdamW& optimizer, const NamedTensors& parameters, const SafetensorsFile& file) {
  auto& state = optimizer.state();
  for (const auto& [name, param] : parameters) {
    if (!file.contains(name + ".exp_avg")) continue;  // never stepped when saved
    for (const char* part : {".exp_avg_sq", ".step"})
      AR_CHECK(file.contains(name + part), file.path(), ": optimizer state of '", name, "' lacks '", name, part, "'");
    at::Tensor exp_avg = file.load(name + ".exp_avg");
    at::Tensor exp_avg_sq = file.load(name + ".exp_avg_sq");
    AR_CHECK(exp_avg.sizes() == param.sizes() && exp_avg_sq.sizes() == param.sizes(), file.path(),
             ": optimizer state of '", name, "' has shape ", exp_avg.sizes(), " but the parameter is ", param.sizes());
    auto s = std::make_unique<torch::optim::AdamWParamState>();
    s->step(file.load(name + ".step").item<int64_t>());
    s->exp_avg(exp_avg.to(param.options()));
    s->exp_avg_sq(exp_avg_sq.to(param.options()));
    state[param.unsafeGetTensorImpl()] = std::move(s);
  }
}

}  // namespace anchor
