#include "trainer/distributed/parameter_sync.h"

#include <torch/torch.h>

#include <functional>

namespace anchor::dist {
namespace {

// Calls `reduce(flat)` for each bucket of bucket_ranges, then copies the bucket back.
int64_t for_each_bucket(const std::vector<at::Tensor>& tensors, int64_t bucket_elements,
                        const std::function<void(at::Tensor&)>& reduce) {
  int64_t calls = 0;
  for (const auto& [i, j] : bucket_ranges(tensors, bucket_elements)) {
    std::vector<at::Tensor> flat_parts;
    for (size_t k = i; k < j; ++k) flat_parts.push_back(tensors[k].reshape({-1}));
    at::Tensor flat = torch::cat(flat_parts);
    reduce(flat);
    ++calls;
    int64_t offset = 0;
    for (size_t k = i; k < j; ++k) {
      const int64_t n = tensors[k].numel();
      tensors[k].copy_(flat.slice(0, offset, offset + n).view(tensors[k].sizes()));
      offset += n;
    }
  }
  return calls;
}

}  // namespace

std::vector<std::pair<size_t, size_t>> bucket_ranges(const std::vector<at::Tensor>& tensors, int64_t bucket_elements) {
  std::vector<std::pair<size_t, size_t>> ranges;
  for (size_t i = 0; i < tensors.size();) {
    size_t j = i;
    int64_t elements = 0;
    while (j < tensors.size() && tensors[j].device() == tensors[i].device() &&
           tensors[j].scalar_type() == tensors[i].scalar_type() &&
           (j == i || elements + tensors[j].numel() <= bucket_elements)) {
      elements += tensors[j].numel();
      ++j;
    }
    ranges.emplace_back(i, j);
    i = j;
  }
  return ranges;
}

int64_t all_reduce_gradients(const std::vector<at::Tensor>& parameters, Communicator& comm, int64_t bucket_elements) {
  if (!comm.distributed()) return 0;
  std::vector<at::Tensor> grads;
  for (const at::Tensor& p : parameters) {
    if (!p.requires_grad()) continue;
    at::Tensor& g = const_cast<at::Tensor&>(p).mutable_grad();
    if (!g.defined()) g = torch::zeros_like(p);
    grads.push_back(g);
  }
  return for_each_bucket(grads, bucket_elements, [&](at::Tensor& flat) { comm.all_reduce_sum(flat, "gradients"); });
}

void broadcast_parameters(const std::vector<at::Tensor>& parameters, Communicator& comm, int64_t bucket_elements) {
  if (!comm.distributed()) return;
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> data;
  for (const at::Tensor& p : parameters) data.push_back(p.detach());
  for_each_bucket(data, bucket_elements, [&](at::Tensor& flat) { comm.broadcast(flat, 0, "initial weights"); });
}

}  // namespace anchor::dist
