// The data-parallel world of one `anchor-rl train` process (docs/design.md §7), llm.c's layout: MPI
// launches and bootstraps (rank, size, local rank, the NCCL unique id) and reduces CPU tensors;
// NCCL reduces CUDA tensors. Started by mpirun / srun --mpi=pmix (OpenMPI's environment); a
// process started without a launcher is one rank and never touches MPI, exactly as before.
//
// Every collective runs under a watchdog: one that has not completed after
// distributed.timeout_seconds ends this process with an error naming the rank and the
// collective, and the launcher then ends the job (a dead or stuck peer never hangs a run).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace anchor::dist {

class Communicator {
 public:
  // The process-wide world, initialised on first use from the launcher's environment.
  static Communicator& world();

  int rank() const { return rank_; }
  int size() const { return size_; }
  int local_rank() const { return local_rank_; }  // rank among the processes on this node
  int local_size() const { return local_size_; }
  bool distributed() const { return size_ > 1; }

  // Seconds a collective may take before the watchdog ends the process (default 600).
  void set_timeout(double seconds);

  // In place, summed over ranks. CPU tensors through MPI, CUDA tensors through NCCL; float,
  // double, int64 (CPU) and bf16 / float (CUDA). `what` names the collective in errors.
  void all_reduce_sum(at::Tensor& tensor, const char* what);
  // 1-D tensors of any length per rank, concatenated in rank order (CPU).
  at::Tensor all_gather(const at::Tensor& local, const char* what);
  // In place, rank `root`'s values on every rank.
  void broadcast(at::Tensor& tensor, int root, const char* what);
  // ZeRO's two collectives over a 1-D buffer cut into one contiguous segment per rank, in rank
  // order (`counts[r]` elements for rank r, zeros allowed, sum = input length):
  //   reduce_scatter_sum: `input` on every rank; `output` [counts[rank]] gets the sum over ranks
  //                       of this rank's segment;
  //   all_gather_into:    `local` [counts[rank]] on every rank; `output` [sum] gets every segment.
  // CPU tensors through MPI (Reduce_scatter / Allgatherv), CUDA ones through NCCL (one grouped
  // reduce / broadcast per rank, so uneven segments are fine). One rank: a copy.
  void reduce_scatter_sum(const at::Tensor& input, at::Tensor& output, const std::vector<int64_t>& counts,
                          const char* what);
  void all_gather_into(const at::Tensor& local, at::Tensor& output, const std::vector<int64_t>& counts,
                       const char* what);
  void barrier(const char* what);

  // Wall time spent in collectives since the last call (the step's perf.comm_seconds).
  double take_comm_seconds();

  // Ends the whole job: prints "anchor-rl: rank R of N: <message>" and aborts every rank
  // (MPI_Abort).
  [[noreturn]] void abort(const std::string& message, int code);

  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

 private:
  Communicator();
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
};

// [begin, end) of `count` items (whole groups, eval prompts) owned by `rank` of `size`:
// contiguous, sizes differing by at most one, lower ranks taking the remainder.
std::pair<int64_t, int64_t> shard_range(int64_t count, int rank, int size);

// "rank R of N: " when distributed, "" otherwise (prefix of log lines and errors).
std::string rank_prefix();

}  // namespace anchor::dist
