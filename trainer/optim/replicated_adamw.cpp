#include "trainer/optim/replicated_adamw.h"

#include <torch/torch.h>

#include <cstdio>
#include <limits>

#include "trainer/common/error.h"
#include "trainer/distributed/communicator.h"
#include "trainer/distributed/parameter_sync.h"
#include "trainer/optim/adamw_state.h"

namespace anchor {
namespace {

class ReplicatedAdamW final : public Optimizer {
 public:
  ReplicatedAdamW(const std::vector<at::Tensor>& parameters, const std::vector<std::string>& names,
                  const AdamWSettings& s, dist::Communicator* comm)
      : parameters_(parameters),
        comm_(comm),
        adamw_(parameters, torch::optim::AdamWOptions(s.lr)
                               .betas({s.beta1, s.beta2})
                               .eps(s.eps)
                               .weight_decay(s.weight_decay)) {
    for (size_t i = 0; i < parameters.size(); ++i) named_.emplace_back(names[i], parameters[i]);
  }

  void zero_grad(bool replicated) override {
    adamw_.zero_grad();
    replicated_ = replicated;
  }

  double reduce_and_clip(double max_norm) override {
    if (comm_ != nullptr && !replicated_) dist::all_reduce_gradients(parameters_, *comm_);
    return torch::nn::utils::clip_grad_norm_(parameters_, max_norm > 0 ? max_norm : std::numeric_limits<double>::infinity());
  }

  void step() override { adamw_.step(); }

  void set_learning_rate(double lr) override {
    for (auto& group : adamw_.param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
  }

  NamedTensors state_tensors() override { return adamw_state_tensors(adamw_, named_); }
  void load_state(const SafetensorsFile& file) override { load_adamw_state(adamw_, named_, file); }

  int64_t moment_bytes() const override {
    int64_t n = 0;
    for (const at::Tensor& p : parameters_) n += p.numel();
    return 2 * n * static_cast<int64_t>(sizeof(float));  // exp_avg + exp_avg_sq (fp32 parameters)
  }

  std::string description() const override {
    char mb[32];
    std::snprintf(mb, sizeof mb, "%.1f MB", static_cast<double>(moment_bytes()) / (1 << 20));
    return str_cat("ZeRO stage 0: optimizer state replicated on every rank, ", mb, " of AdamW moments");
  }

  void poison_gradients() override {
    torch::NoGradGuard no_grad;
    at::Tensor& g = const_cast<at::Tensor&>(parameters_.front()).mutable_grad();
    if (!g.defined()) g = torch::zeros_like(parameters_.front());
    g.view({-1})[0] = std::numeric_limits<float>::quiet_NaN();
  }

 private:
  std::vector<at::Tensor> parameters_;
  NamedTensors named_;
  dist::Communicator* comm_;
  bool replicated_ = false;
  torch::optim::AdamW adamw_;
};

}  // namespace

std::unique_ptr<Optimizer> make_replicated_adamw(const std::vector<at::Tensor>& parameters,
                                                 const std::vector<std::string>& names, const AdamWSettings& settings,
                                                 dist::Communicator* comm) {
  return std::make_unique<ReplicatedAdamW>(parameters, names, settings, comm);
}

}  // namespace anchor
