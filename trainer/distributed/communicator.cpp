#include "trainer/distributed/communicator.h"

// The C API only: OpenMPI would otherwise pull in its deprecated C++ bindings.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>

#ifdef ANCHOR_WITH_NCCL
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#include <nccl.h>
#endif

#include "trainer/common/error.h"
#include "trainer/common/log.h"

namespace anchor::dist {
namespace {

using Clock = std::chrono::steady_clock;

// Launched by an MPI launcher: mpirun / mpiexec (OpenMPI sets OMPI_COMM_WORLD_SIZE) or a PMIx /
// PMI launcher such as srun --mpi=pmix.
bool launched_by_mpi() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"})
    if (std::getenv(var) != nullptr) return true;
  return false;
}

MPI_Datatype mpi_type(at::ScalarType t, const char* what) {
  switch (t) {
    case at::kFloat: return MPI_FLOAT;
    case at::kDouble: return MPI_DOUBLE;
    case at::kLong: return MPI_INT64_T;
    case at::kInt: return MPI_INT32_T;
    case at::kByte: return MPI_UINT8_T;
    default: AR_FAIL("collective ", what, ": dtype ", c10::toString(t), " is not supported on CPU");
  }
}

void check_mpi(int rc, const char* call, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  AR_FAIL(rank_prefix(), "collective ", what, ": ", call, " failed: ", std::string(text, static_cast<size_t>(len)));
}

#ifdef ANCHOR_WITH_NCCL
void check_nccl(ncclResult_t rc, const char* call, const char* what) {
  AR_CHECK(rc == ncclSuccess, rank_prefix(), "collective ", what, ": ", call, " failed: ", ncclGetErrorString(rc));
}
ncclDataType_t nccl_type(at::ScalarType t, const char* what) {
  switch (t) {
    case at::kFloat: return ncclFloat32;
    case at::kDouble: return ncclFloat64;
    case at::kBFloat16: return ncclBfloat16;
    case at::kHalf: return ncclFloat16;
    case at::kLong: return ncclInt64;
    default: AR_FAIL("collective ", what, ": dtype ", c10::toString(t), " is not supported on CUDA");
  }
}
#endif

}  // namespace

struct Communicator::Impl {
  bool mpi = false;
  MPI_Comm comm = MPI_COMM_NULL;
  double comm_seconds = 0;
  // Watchdog: the deadline of the collective in flight (0 = none) and its name.
  std::atomic<int64_t> deadline_ns{0};
  std::atomic<const char*> in_flight{nullptr};
  double timeout_seconds = 600;
  std::mutex mutex;
  std::condition_variable wake;
  bool stopping = false;
  std::thread watchdog;
#ifdef ANCHOR_WITH_NCCL
  ncclComm_t nccl = nullptr;
  int nccl_device = -1;
  // The NCCL communicator (set up on first use, on the device of the first CUDA tensor) and the
  // stream to run on.
  cudaStream_t nccl_stream(const at::Tensor& t, int rank, int size, const char* what) {
    if (nccl == nullptr) {
      ncclUniqueId id;
      if (rank == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId", what);
      check_mpi(MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, comm), "MPI_Bcast (NCCL id)", what);
      nccl_device = t.device().index();
      c10::cuda::CUDAGuard guard(t.device());
      check_nccl(ncclCommInitRank(&nccl, size, id, rank), "ncclCommInitRank", what);
    }
    AR_CHECK(t.device().index() == nccl_device, "collective ", what, ": tensor on ", t.device(),
             " but NCCL was set up on cuda:", nccl_device);
    return c10::cuda::getCurrentCUDAStream(t.device().index()).stream();
  }
#endif

  // RAII scope of one collective: arms the watchdog and adds the elapsed time.
  struct Scope {
    Impl& impl;
    Clock::time_point start = Clock::now();
    Scope(Impl& i, const char* what) : impl(i) {
      impl.in_flight.store(what);
      const auto limit = std::chrono::duration<double>(impl.timeout_seconds);
      impl.deadline_ns.store(
          std::chrono::duration_cast<std::chrono::nanoseconds>((start + std::chrono::duration_cast<Clock::duration>(limit)).time_since_epoch())
              .count());
    }
    ~Scope() {
      impl.deadline_ns.store(0);
      impl.comm_seconds += std::chrono::duration<double>(Clock::now() - start).count();
    }
  };
};

Communicator& Communicator::world() {
  static Communicator* world = new Communicator();  // never destroyed: MPI_Finalize runs at exit
  return *world;
}

Communicator::Communicator() : impl_(std::make_unique<Impl>()) {
  if (!launched_by_mpi()) return;
  int provided = 0;
  int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
  AR_CHECK(rc == MPI_SUCCESS, "MPI_Init_thread failed (", rc, "): is this process started by mpirun / srun?");
  impl_->mpi = true;
  MPI_Comm_dup(MPI_COMM_WORLD, &impl_->comm);
  // Errors come back as return codes, turned into exceptions that name the collective.
  MPI_Comm_set_errhandler(impl_->comm, MPI_ERRORS_RETURN);
  MPI_Comm_rank(impl_->comm, &rank_);
  MPI_Comm_size(impl_->comm, &size_);
  MPI_Comm local;
  MPI_Comm_split_type(impl_->comm, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local);
  MPI_Comm_rank(local, &local_rank_);
  MPI_Comm_size(local, &local_size_);
  MPI_Comm_free(&local);
  std::atexit([] {
    Communicator& w = world();
    {
      std::lock_guard<std::mutex> lock(w.impl_->mutex);
      w.impl_->stopping = true;
    }
    w.impl_->wake.notify_all();
    if (w.impl_->watchdog.joinable()) w.impl_->watchdog.join();
#ifdef ANCHOR_WITH_NCCL
    if (w.impl_->nccl != nullptr) ncclCommDestroy(w.impl_->nccl);
#endif
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  });
  if (const char* t = std::getenv("ANCHOR_COLLECTIVE_TIMEOUT")) set_timeout(std::atof(t));
  Impl* impl = impl_.get();
  const int rank = rank_, size = size_;
  impl->watchdog = std::thread([impl, rank, size] {
    std::unique_lock<std::mutex> lock(impl->mutex);
    while (!impl->stopping) {
      impl->wake.wait_for(lock, std::chrono::milliseconds(500));
      const int64_t deadline = impl->deadline_ns.load();
      const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
      if (deadline == 0 || now < deadline) continue;
      const char* what = impl->in_flight.load();
      const std::string message =
          str_cat("collective '", what ? what : "?", "' did not complete within ", impl->timeout_seconds,
                  " s (distributed.timeout_seconds): another rank died, is stuck or took a different path; ending "
                  "the job");
      log::error(message);  // the log prefix names the rank
      std::fprintf(stderr, "anchor-rl: error: rank %d of %d: %s\n", rank, size, message.c_str());
      std::fflush(stderr);
      // A non-zero exit without MPI_Finalize makes the launcher end every rank.
      std::_Exit(3);
    }
  });
}

Communicator::~Communicator() = default;

void Communicator::set_timeout(double seconds) {
  AR_CHECK(seconds > 0, "distributed.timeout_seconds must be positive, got ", seconds);
  impl_->timeout_seconds = seconds;
}

double Communicator::take_comm_seconds() {
  const double s = impl_->comm_seconds;
  impl_->comm_seconds = 0;
  return s;
}

void Communicator::all_reduce_sum(at::Tensor& t, const char* what) {
  if (!distributed()) return;
  AR_CHECK(t.is_contiguous(), "collective ", what, ": tensor must be contiguous");
  Impl::Scope scope(*impl_, what);
  if (t.is_cuda()) {
#ifdef ANCHOR_WITH_NCCL
    const cudaStream_t stream = impl_->nccl_stream(t, rank_, size_, what);
    check_nccl(ncclAllReduce(t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.numel()), nccl_type(t.scalar_type(), what),
                             ncclSum, impl_->nccl, stream),
               "ncclAllReduce", what);
    // Waited for here so that the watchdog covers it and the timing is real.
    AR_CHECK(cudaStreamSynchronize(stream) == cudaSuccess, "collective ", what, ": cudaStreamSynchronize failed");
    return;
#else
    AR_FAIL("collective ", what, ": CUDA tensor but this build has no NCCL (rebuild with NCCL found)");
#endif
  }
  AR_CHECK(t.numel() < (int64_t{1} << 31), "collective ", what, ": ", t.numel(), " elements; buckets must be smaller");
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, t.data_ptr(), static_cast<int>(t.numel()), mpi_type(t.scalar_type(), what),
                          MPI_SUM, impl_->comm),
            "MPI_Allreduce", what);
}

at::Tensor Communicator::all_gather(const at::Tensor& local_in, const char* what) {
  if (!distributed()) return local_in.clone();
  const at::Tensor local = local_in.contiguous().cpu();
  AR_CHECK(local.dim() == 1, "collective ", what, ": all_gather takes 1-D tensors");
  std::vector<int64_t> counts(static_cast<size_t>(size_));
  {
    Impl::Scope scope(*impl_, what);
    const int64_t mine = local.numel();
    check_mpi(MPI_Allgather(&mine, 1, MPI_INT64_T, counts.data(), 1, MPI_INT64_T, impl_->comm), "MPI_Allgather", what);
  }
  int64_t total = 0;
  for (int64_t c : counts) total += c;
  at::Tensor out = torch::empty({total}, local.options());
  all_gather_into(local, out, counts, what);
  return out;
}

void Communicator::broadcast(at::Tensor& t, int root, const char* what) {
  if (!distributed()) return;
  AR_CHECK(t.is_contiguous(), "collective ", what, ": tensor must be contiguous");
  if (t.is_cuda()) {
    // Rare (start-up weights): through the host, so that no NCCL set-up is needed for it.
    at::Tensor host = t.cpu();
    broadcast(host, root, what);
    t.copy_(host);
    return;
  }
  Impl::Scope scope(*impl_, what);
  AR_CHECK(t.numel() < (int64_t{1} << 31), "collective ", what, ": ", t.numel(), " elements; buckets must be smaller");
  check_mpi(MPI_Bcast(t.data_ptr(), static_cast<int>(t.numel()), mpi_type(t.scalar_type(), what), root, impl_->comm),
            "MPI_Bcast", what);
}

namespace {

// The checks shared by the segmented collectives (`whole` holds every segment, `part` this
// rank's) and the offsets of the segments.
std::vector<int64_t> segment_offsets(const at::Tensor& whole, const at::Tensor& part, const std::vector<int64_t>& counts,
                                     int rank, int size, const char* what) {
  AR_CHECK(whole.dim() == 1 && part.dim() == 1 && whole.is_contiguous() && part.is_contiguous() &&
               whole.scalar_type() == part.scalar_type() && whole.device() == part.device(),
           "collective ", what, ": segmented collectives take contiguous 1-D tensors of one dtype and device");
  AR_CHECK(static_cast<int>(counts.size()) == size, "collective ", what, ": ", counts.size(), " segments for ", size,
           " ranks");
  const int64_t total = whole.numel();
  std::vector<int64_t> offsets;
  int64_t sum = 0;
  for (int64_t c : counts) {
    AR_CHECK(c >= 0, "collective ", what, ": negative segment");
    offsets.push_back(sum);
    sum += c;
  }
  AR_CHECK(sum == total, "collective ", what, ": segments of ", sum, " elements for a buffer of ", total);
  AR_CHECK(total < (int64_t{1} << 31), "collective ", what, ": ", total, " elements; buckets must be smaller");
  AR_CHECK(part.numel() == counts[static_cast<size_t>(rank)], "collective ", what, ": ", part.numel(),
           " elements for this rank's segment of ", counts[static_cast<size_t>(rank)]);
  return offsets;
}

std::vector<int> as_int(const std::vector<int64_t>& v) { return std::vector<int>(v.begin(), v.end()); }

}  // namespace

void Communicator::reduce_scatter_sum(const at::Tensor& input, at::Tensor& output, const std::vector<int64_t>& counts,
                                      const char* what) {
  const std::vector<int64_t> offsets = segment_offsets(input, output, counts, rank_, size_, what);
  if (!distributed()) {
    output.copy_(input);
    return;
  }
  Impl::Scope scope(*impl_, what);
  if (input.is_cuda()) {
#ifdef ANCHOR_WITH_NCCL
    const cudaStream_t stream = impl_->nccl_stream(input, rank_, size_, what);
    const ncclDataType_t type = nccl_type(input.scalar_type(), what);
    const size_t item = input.element_size();
    check_nccl(ncclGroupStart(), "ncclGroupStart", what);
    for (int r = 0; r < size_; ++r) {
      const auto* send = static_cast<const char*>(input.data_ptr()) + offsets[static_cast<size_t>(r)] * item;
      check_nccl(ncclReduce(send, r == rank_ ? output.data_ptr() : nullptr, static_cast<size_t>(counts[static_cast<size_t>(r)]),
                            type, ncclSum, r, impl_->nccl, stream),
                 "ncclReduce", what);
    }
    check_nccl(ncclGroupEnd(), "ncclGroupEnd", what);
    AR_CHECK(cudaStreamSynchronize(stream) == cudaSuccess, "collective ", what, ": cudaStreamSynchronize failed");
    return;
#else
    AR_FAIL("collective ", what, ": CUDA tensor but this build has no NCCL (rebuild with NCCL found)");
#endif
  }
  const std::vector<int> recv = as_int(counts);
  check_mpi(MPI_Reduce_scatter(input.data_ptr(), output.data_ptr(), recv.data(), mpi_type(input.scalar_type(), what),
                               MPI_SUM, impl_->comm),
            "MPI_Reduce_scatter", what);
}

void Communicator::all_gather_into(const at::Tensor& local, at::Tensor& output, const std::vector<int64_t>& counts,
                                   const char* what) {
  const std::vector<int64_t> offsets = segment_offsets(output, local, counts, rank_, size_, what);
  if (!distributed()) {
    output.copy_(local);
    return;
  }
  Impl::Scope scope(*impl_, what);
  if (local.is_cuda()) {
#ifdef ANCHOR_WITH_NCCL
    const cudaStream_t stream = impl_->nccl_stream(local, rank_, size_, what);
    const ncclDataType_t type = nccl_type(local.scalar_type(), what);
    const size_t item = local.element_size();
    check_nccl(ncclGroupStart(), "ncclGroupStart", what);
    for (int r = 0; r < size_; ++r) {
      auto* recv = static_cast<char*>(output.data_ptr()) + offsets[static_cast<size_t>(r)] * item;
      check_nccl(ncclBroadcast(r == rank_ ? local.data_ptr() : nullptr, recv,
                               static_cast<size_t>(counts[static_cast<size_t>(r)]), type, r, impl_->nccl, stream),
                 "ncclBroadcast", what);
    }
    check_nccl(ncclGroupEnd(), "ncclGroupEnd", what);
    AR_CHECK(cudaStreamSynchronize(stream) == cudaSuccess, "collective ", what, ": cudaStreamSynchronize failed");
    return;
#else
    AR_FAIL("collective ", what, ": CUDA tensor but this build has no NCCL (rebuild with NCCL found)");
#endif
  }
  const std::vector<int> recv = as_int(counts), displs = as_int(offsets);
  const MPI_Datatype type = mpi_type(local.scalar_type(), what);
  check_mpi(MPI_Allgatherv(local.data_ptr(), static_cast<int>(local.numel()), type, output.data_ptr(), recv.data(),
                           displs.data(), type, impl_->comm),
            "MPI_Allgatherv", what);
}

void Communicator::barrier(const char* what) {
  if (!distributed()) return;
  Impl::Scope scope(*impl_, what);
  check_mpi(MPI_Barrier(impl_->comm), "MPI_Barrier", what);
}

void Communicator::abort(const std::string& message, int code) {
  std::fprintf(stderr, "anchor-rl: %s%s\n", rank_prefix().c_str(), message.c_str());
  std::fflush(stderr);
  if (impl_->mpi && distributed()) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

std::pair<int64_t, int64_t> shard_range(int64_t count, int rank, int size) {
  AR_CHECK(size >= 1 && rank >= 0 && rank < size, "shard_range: rank ", rank, " of ", size);
  const int64_t base = count / size, extra = count % size;
  const int64_t begin = rank * base + std::min<int64_t>(rank, extra);
  return {begin, begin + base + (rank < extra ? 1 : 0)};
}

std::string rank_prefix() {
  const Communicator& w = Communicator::world();
  return w.distributed() ? str_cat("rank ", w.rank(), " of ", w.size(), ": ") : std::string();
}

}  // namespace anchor::dist
