#include "trainer/optim/sharded_adamw.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "trainer/common/error.h"
#include "trainer/distributed/communicator.h"
#include "trainer/distributed/parameter_sync.h"

namespace anchor {
namespace {

std::string megabytes(int64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MB", static_cast<double>(bytes) / (1 << 20));
  return text;
}

// A run of whole parameters [first, last) covering flat elements [begin, end), and how many
// of those elements each rank owns (the segments of the bucket's collectives, in rank order).
struct Bucket {
  size_t first = 0, last = 0;
  int64_t begin = 0, end = 0;
  std::vector<int64_t> counts;
  int64_t mine_begin = 0, mine_end = 0;  // this rank's part, flat coordinates
};

class ShardedAdamW final : public Optimizer {
 public:
  ShardedAdamW(const std::vector<at::Tensor>& parameters, const std::vector<std::string>& names,
               const AdamWSettings& s, int stage, dist::Communicator* comm)
      : parameters_(parameters), names_(names), settings_(s), stage_(stage), comm_(comm) {
    AR_CHECK(!parameters_.empty(), "sharded AdamW: no parameters");
    rank_ = comm_ ? comm_->rank() : 0;
    world_ = comm_ ? comm_->size() : 1;
    for (const at::Tensor& p : parameters_) {
      AR_CHECK(p.scalar_type() == at::kFloat && p.device() == parameters_.front().device(),
               "distributed.zero_stage ", stage, ": parameters must be float32 on one device, got ", p.scalar_type(),
               " on ", p.device());
      offsets_.push_back(total_);
      total_ += p.numel();
    }
    std::tie(slice_begin_, slice_end_) = dist::shard_range(total_, rank_, world_);
    // Buckets of whole parameters, as the stage-0 all-reduce packs them.
    for (const auto& [first, last] : dist::bucket_ranges(parameters_)) {
      Bucket b;
      b.first = first;
      b.last = last;
      b.begin = offsets_[first];
      b.end = last < parameters_.size() ? offsets_[last] : total_;
      for (int r = 0; r < world_; ++r) {
        const auto [lo, hi] = dist::shard_range(total_, r, world_);
        b.counts.push_back(std::max<int64_t>(0, std::min(hi, b.end) - std::max(lo, b.begin)));
      }
      b.mine_begin = std::clamp(slice_begin_, b.begin, b.end);
      b.mine_end = std::clamp(slice_end_, b.begin, b.end);
      buckets_.push_back(std::move(b));
    }
    torch::NoGradGuard no_grad;
    const at::TensorOptions fp32 = parameters_.front().options().dtype(at::kFloat);
    const int64_t n = slice_end_ - slice_begin_;
    master_ = torch::empty({n}, fp32);
    for (const Bucket& b : buckets_)
      if (b.mine_end > b.mine_begin) mine(master_, b).copy_(flat(b, /*gradients=*/false).slice(0, b.mine_begin - b.begin, b.mine_end - b.begin));
    exp_avg_ = torch::zeros({n}, fp32);
    exp_avg_sq_ = torch::zeros({n}, fp32);
    grad_ = torch::zeros({n}, fp32);
  }

  void zero_grad(bool replicated) override {
    for (const at::Tensor& p : parameters_) const_cast<at::Tensor&>(p).mutable_grad() = at::Tensor();
    grad_.zero_();
    replicated_ = replicated;
  }

  void after_backward() override {
    if (stage_ >= 2) move_gradients();
  }
  bool after_backward_is_collective() const override { return stage_ >= 2 && world_ > 1 && !replicated_; }

  double reduce_and_clip(double max_norm) override {
    // Stage 2 moved every micro-batch's gradients already (after_backward).
    if (stage_ == 1) move_gradients();
    at::Tensor sum_sq = grad_.square().sum(at::kDouble).reshape({1});
    if (comm_ != nullptr) comm_->all_reduce_sum(sum_sq, "gradient norm");
    const double norm = std::sqrt(sum_sq.item<double>());
    if (max_norm > 0 && std::isfinite(norm)) {
      // torch's clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is below 1.
      const double coef = max_norm / (norm + 1e-6);
      if (coef < 1.0) grad_.mul_(coef);
    }
    return norm;
  }

  void step() override {
    torch::NoGradGuard no_grad;
    // torch::optim::AdamW::step, op for op, on the slice.
    const AdamWSettings& s = settings_;
    ++step_;
    if (s.weight_decay != 0) master_.mul_(1 - s.lr * s.weight_decay);
    const double bias_correction1 = 1 - std::pow(s.beta1, static_cast<double>(step_));
    const double bias_correction2 = 1 - std::pow(s.beta2, static_cast<double>(step_));
    exp_avg_.mul_(s.beta1).add_(grad_, 1 - s.beta1);
    exp_avg_sq_.mul_(s.beta2).addcmul_(grad_, grad_, 1 - s.beta2);
    const at::Tensor denom = (exp_avg_sq_.sqrt() / std::sqrt(bias_correction2)).add_(s.eps);
    master_.addcdiv_(exp_avg_, denom, -s.lr / bias_correction1);
    // Every rank's updated slice into every rank's weights.
    for (const Bucket& b : buckets_) {
      at::Tensor full = torch::empty({b.end - b.begin}, master_.options());
      comm_all_gather(mine(master_, b), full, b, "weights (all-gather)");
      scatter_into_parameters(b, full);
    }
  }

  void set_learning_rate(double lr) override { settings_.lr = lr; }

  NamedTensors state_tensors() override {
    NamedTensors out;
    if (step_ == 0) return out;  // never stepped: no state, as torch's AdamW
    const bool writer = rank_ == 0;
    std::vector<std::pair<std::string, at::Tensor>> avg, avg_sq;
    for (const Bucket& b : buckets_) {
      for (const auto& [local, list] : {std::pair<at::Tensor*, NamedTensors*>{&exp_avg_, &avg},
                                        std::pair<at::Tensor*, NamedTensors*>{&exp_avg_sq_, &avg_sq}}) {
        at::Tensor full = torch::empty({b.end - b.begin}, master_.options());
        comm_all_gather(mine(*local, b), full, b, "optimizer state (checkpoint)");
        if (!writer) continue;
        const at::Tensor host = full.cpu();
        for (size_t i = b.first; i < b.last; ++i)
          list->emplace_back(names_[i], host.slice(0, offsets_[i] - b.begin, offsets_[i] - b.begin + parameters_[i].numel())
                                            .view(parameters_[i].sizes())
                                            .clone());
      }
    }
    if (!writer) return out;
    for (size_t i = 0; i < parameters_.size(); ++i) {
      out.emplace_back(names_[i] + ".exp_avg", avg[i].second);
      out.emplace_back(names_[i] + ".exp_avg_sq", avg_sq[i].second);
      out.emplace_back(names_[i] + ".step", torch::tensor(step_, torch::kLong));
    }
    return out;
  }

  void load_state(const SafetensorsFile& file) override {
    torch::NoGradGuard no_grad;
    int64_t saved_step = -1;
    size_t with_state = 0;
    for (size_t i = 0; i < parameters_.size(); ++i) {
      const std::string& name = names_[i];
      if (!file.contains(name + ".exp_avg")) continue;
      ++with_state;
      for (const char* part : {".exp_avg_sq", ".step"})
        AR_CHECK(file.contains(name + part), file.path(), ": optimizer state of '", name, "' lacks '", name, part, "'");
      const int64_t step = file.load(name + ".step").item<int64_t>();
      AR_CHECK(saved_step < 0 || step == saved_step, file.path(), ": optimizer state of '", name, "' is at step ", step,
               " and earlier parameters at ", saved_step, "; a sharded optimizer (distributed.zero_stage ", stage_,
               ") steps every parameter together");
      saved_step = step;
      const int64_t lo = std::max(offsets_[i], slice_begin_);
      const int64_t hi = std::min(offsets_[i] + parameters_[i].numel(), slice_end_);
      for (const auto& [part, local] : {std::pair<const char*, at::Tensor*>{".exp_avg", &exp_avg_},
                                        std::pair<const char*, at::Tensor*>{".exp_avg_sq", &exp_avg_sq_}}) {
        const at::Tensor t = file.load(name + part);
        AR_CHECK(t.sizes() == parameters_[i].sizes(), file.path(), ": optimizer state '", name, part, "' has shape ",
                 t.sizes(), " but the parameter is ", parameters_[i].sizes());
        if (hi > lo)
          local->slice(0, lo - slice_begin_, hi - slice_begin_)
              .copy_(t.reshape({-1}).slice(0, lo - offsets_[i], hi - offsets_[i]));
      }
    }
    AR_CHECK(with_state == 0 || with_state == parameters_.size(), file.path(), ": optimizer state for ", with_state,
             " of ", parameters_.size(), " parameters; a sharded optimizer (distributed.zero_stage ", stage_,
             ") needs all or none");
    step_ = std::max<int64_t>(saved_step, 0);
  }

  int64_t moment_bytes() const override { return 2 * (slice_end_ - slice_begin_) * static_cast<int64_t>(sizeof(float)); }

  std::string description() const override {
    return str_cat("ZeRO stage ", stage_, ": this rank owns elements [", slice_begin_, ", ", slice_end_, ") of ",
                   total_, ": ", megabytes(moment_bytes()), " of AdamW moments, ", megabytes(moment_bytes() / 2),
                   " each of fp32 master weights and gradient sum");
  }

  void poison_gradients() override {
    torch::NoGradGuard no_grad;
    if (grad_.numel() > 0) grad_[0] = std::numeric_limits<float>::quiet_NaN();
  }

 private:
  // This rank's part of bucket b inside a slice-sized tensor.
  at::Tensor mine(const at::Tensor& slice_tensor, const Bucket& b) const {
    return slice_tensor.slice(0, b.mine_begin - slice_begin_, b.mine_end - slice_begin_);
  }

  // The bucket's parameters (or their gradients, zeros where undefined) as one flat fp32 tensor.
  at::Tensor flat(const Bucket& b, bool gradients) const {
    std::vector<at::Tensor> parts;
    for (size_t i = b.first; i < b.last; ++i) {
      const at::Tensor& p = parameters_[i];
      const at::Tensor t = gradients ? (p.grad().defined() ? p.grad() : torch::zeros_like(p)) : p.detach();
      parts.push_back(t.reshape({-1}).to(at::kFloat));
    }
    return torch::cat(parts);
  }

  // Sums every rank's .grad into the owners' slices (added to what earlier micro-batches moved)
  // and frees the full gradients. A collective (every rank calls it, with gradients or without:
  // zeros), except in a replicated step, where each rank takes its slice of its own gradients.
  void move_gradients() {
    torch::NoGradGuard no_grad;
    for (const Bucket& b : buckets_) {
      const at::Tensor full = flat(b, /*gradients=*/true);
      at::Tensor part = torch::empty({b.mine_end - b.mine_begin}, grad_.options());
      if (comm_ != nullptr && !replicated_) comm_->reduce_scatter_sum(full, part, b.counts, "gradients (reduce-scatter)");
      else part.copy_(full.slice(0, b.mine_begin - b.begin, b.mine_end - b.begin));
      mine(grad_, b).add_(part);
    }
    for (const at::Tensor& p : parameters_) const_cast<at::Tensor&>(p).mutable_grad() = at::Tensor();
  }

  void comm_all_gather(const at::Tensor& local, at::Tensor& full, const Bucket& b, const char* what) {
    if (comm_ != nullptr) comm_->all_gather_into(local.contiguous(), full, b.counts, what);
    else full.copy_(local);
  }

  void scatter_into_parameters(const Bucket& b, const at::Tensor& full) {
    for (size_t i = b.first; i < b.last; ++i) {
      const at::Tensor& p = parameters_[i];
      p.detach().view({-1}).copy_(full.slice(0, offsets_[i] - b.begin, offsets_[i] - b.begin + p.numel()));
    }
  }

  std::vector<at::Tensor> parameters_;
  std::vector<std::string> names_;
  AdamWSettings settings_;
  int stage_;
  dist::Communicator* comm_;
  int rank_ = 0, world_ = 1;
  std::vector<int64_t> offsets_;
  int64_t total_ = 0, slice_begin_ = 0, slice_end_ = 0;
  std::vector<Bucket> buckets_;
  at::Tensor master_, exp_avg_, exp_avg_sq_, grad_;
  int64_t step_ = 0;
  bool replicated_ = false;
};

}  // namespace

std::unique_ptr<Optimizer> make_sharded_adamw(const std::vector<at::Tensor>& parameters,
                                              const std::vector<std::string>& names, const AdamWSettings& settings,
                                              int zero_stage, dist::Communicator* comm) {
  return std::make_unique<ShardedAdamW>(parameters, names, settings, zero_stage, comm);
}

}  // namespace anchor
