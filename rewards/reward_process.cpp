#include "rewards/reward_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <thread>
#include <vector>

#include "trainer/common/error.h"
#include "trainer/common/log.h"

namespace anchor::rewards {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kStderrTailLines = 20;
constexpr size_t kMaxAnswerBytes = size_t{256} << 20;  // a runaway writer is an error, not an OOM

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

}  // namespace

RewardProcess::RewardProcess(std::string command, std::string label)
    : command_(std::move(command)), label_(std::move(label)) {}

RewardProcess::~RewardProcess() {
  try {
    stop();
  } catch (...) {
  }
}

void RewardProcess::start() {
  if (pid_ > 0) return;
  // stdin is a socket, so a write to a program that has exited fails with EPIPE
  // (MSG_NOSIGNAL) instead of raising SIGPIPE in the trainer.
  int in[2], out[2], err[2];
  AR_CHECK(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) == 0, label_, ": socketpair: ", std::strerror(errno));
  AR_CHECK(::pipe2(out, O_CLOEXEC) == 0 && ::pipe2(err, O_CLOEXEC) == 0, label_, ": pipe: ", std::strerror(errno));
  const char* argv[] = {"/bin/sh", "-c", command_.c_str(), nullptr};
  // The program is no MPI process: without the launcher's variables it (or an anchor-rl it
  // starts) does not try to join the job. It learns its rank from ANCHOR_REWARD_RANK instead.
  auto first_of = [](std::initializer_list<const char*> names, const char* fallback) {
    for (const char* n : names)
      if (const char* v = std::getenv(n)) return std::string(v);
    return std::string(fallback);
  };
  std::vector<std::string> env_strings = {
      "ANCHOR_REWARD_RANK=" + first_of({"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"}, "0"),
      "ANCHOR_REWARD_WORLD_SIZE=" + first_of({"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS"}, "1")};
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view var(*e);
    bool drop = false;
    for (const char* prefix : {"OMPI_", "PMIX_", "PMI_", "ANCHOR_REWARD_RANK=", "ANCHOR_REWARD_WORLD_SIZE="})
      drop = drop || var.rfind(prefix, 0) == 0;
    if (!drop) env_strings.emplace_back(var);
  }
  std::vector<char*> envp;
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) ::close(fd);
    AR_FAIL(label_, ": fork failed: ", std::strerror(errno));
  }
  if (pid == 0) {
    // Only async-signal-safe calls between fork and exec (the trainer has other threads).
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(127);
    sigset_t all;
    ::sigemptyset(&all);
    ::sigprocmask(SIG_SETMASK, &all, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    ::dup2(in[1], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    ::execve("/bin/sh", const_cast<char* const*>(argv), envp.data());
    ::_exit(127);
  }
  ::close(in[1]);
  ::close(out[1]);
  ::close(err[1]);
  pid_ = pid;
  stdin_fd_ = in[0];
  stdout_fd_ = out[0];
  stderr_fd_ = err[0];
  for (int fd : {stdin_fd_, stdout_fd_, stderr_fd_}) set_nonblocking(fd);
  stdout_buffer_.clear();
  stderr_partial_.clear();
  stderr_lines_.clear();
}

void RewardProcess::drain_stderr(bool until_eof) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(until_eof ? 500 : 0);
  char buffer[4096];
  while (stderr_fd_ >= 0) {
    const ssize_t n = ::read(stderr_fd_, buffer, sizeof buffer);
    if (n > 0) {
      stderr_partial_.append(buffer, static_cast<size_t>(n));
      for (size_t nl; (nl = stderr_partial_.find('\n')) != std::string::npos;) {
        std::string line = stderr_partial_.substr(0, nl);
        stderr_partial_.erase(0, nl + 1);
        log::info(str_cat(label_, ": ", line));
        stderr_lines_.push_back(std::move(line));
        if (stderr_lines_.size() > kStderrTailLines) stderr_lines_.pop_front();
      }
      continue;
    }
    if (n == 0 || (errno != EAGAIN && errno != EINTR)) {  // EOF: every writer has exited
      ::close(stderr_fd_);
      stderr_fd_ = -1;
      break;
    }
    if (errno == EINTR) continue;
    if (!until_eof || remaining_ms(deadline) == 0) break;
    pollfd p{stderr_fd_, POLLIN, 0};
    ::poll(&p, 1, remaining_ms(deadline));
  }
  if (until_eof && !stderr_partial_.empty()) {
    log::info(str_cat(label_, ": ", stderr_partial_));
    stderr_lines_.push_back(stderr_partial_);
    stderr_partial_.clear();
  }
}

std::string RewardProcess::stderr_tail() const {
  if (stderr_lines_.empty()) return "its stderr was empty";
  std::string out = "last lines of its stderr:";
  for (const std::string& line : stderr_lines_) out += "\n    " + line;
  return out;
}

std::string RewardProcess::reap(double wait_seconds) {
  const Clock::time_point deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(wait_seconds));
  int status = 0;
  pid_t done = 0;
  while ((done = ::waitpid(pid_, &status, WNOHANG)) == 0 && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  if (done == 0) {  // still running: end the whole group
    ::kill(-pid_, SIGKILL);
    while ((done = ::waitpid(pid_, &status, 0)) < 0 && errno == EINTR) {
    }
  }
  drain_stderr(true);
  std::string how;
  if (done < 0)
    how = str_cat("ended (waitpid: ", std::strerror(errno), ")");
  else if (WIFEXITED(status))
    how = str_cat("exited with code ", WEXITSTATUS(status),
                  WEXITSTATUS(status) == 127 ? " (127: the shell could not find the command)" : "");
  else if (WIFSIGNALED(status))
    how = str_cat("was killed by signal ", WTERMSIG(status), " (", ::strsignal(WTERMSIG(status)), ")");
  else
    how = "ended";
  pid_ = -1;
  close_fds();
  return how;
}

void RewardProcess::close_fds() {
  for (int* fd : {&stdin_fd_, &stdout_fd_, &stderr_fd_})
    if (*fd >= 0) {
      ::close(*fd);
      *fd = -1;
    }
}

RewardProcess::Exchange RewardProcess::exchange(const std::string& request, double timeout_seconds) {
  AR_CHECK(stdout_buffer_.empty(), label_, ": the program wrote more than one line for one batch (left over: '",
           stdout_buffer_.substr(0, 200), "'); write exactly one answer line per request line");
  start();
  const Clock::time_point deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout_seconds));
  const std::string data = request + "\n";
  size_t written = 0;
  std::string answer;
  bool have_answer = false;
  auto ended = [&](Outcome outcome, const std::string& how) {
    const std::string tail = stderr_tail();
    return Exchange{outcome, "", str_cat(how, "; ", tail)};
  };
  char buffer[65536];
  for (;;) {
    if (have_answer && written == data.size()) {
      return Exchange{Outcome::answered, std::move(answer), ""};
    }
    std::vector<pollfd> fds;
    if (written < data.size()) fds.push_back({stdin_fd_, POLLOUT, 0});
    if (!have_answer) fds.push_back({stdout_fd_, POLLIN, 0});
    if (stderr_fd_ >= 0) fds.push_back({stderr_fd_, POLLIN, 0});
    const int ready = ::poll(fds.data(), fds.size(), remaining_ms(deadline));
    if (ready < 0 && errno == EINTR) continue;  // a stop signal: the exchange still finishes
    AR_CHECK(ready >= 0, label_, ": poll: ", std::strerror(errno));
    if (ready == 0 && remaining_ms(deadline) == 0) {
      ::kill(-pid_, SIGKILL);
      const std::string how = reap(1.0);
      return ended(Outcome::timed_out, str_cat("no answer within ", timeout_seconds,
                                               " s (timeout_seconds); the program was killed (", how, ")"));
    }
    for (const pollfd& p : fds) {
      if (p.revents == 0) continue;
      if (p.fd == stderr_fd_) {
        drain_stderr(false);
      } else if (p.fd == stdin_fd_) {
        const ssize_t n = ::send(stdin_fd_, data.data() + written, data.size() - written, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
          written += static_cast<size_t>(n);
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {  // EPIPE / ECONNRESET: it has exited
          const std::string how = reap(2.0);
          return ended(Outcome::exited, str_cat("the program ", how, " before reading the whole batch"));
        }
      } else if (p.fd == stdout_fd_) {
        const ssize_t n = ::read(stdout_fd_, buffer, sizeof buffer);
        if (n > 0) {
          stdout_buffer_.append(buffer, static_cast<size_t>(n));
          if (const size_t nl = stdout_buffer_.find('\n'); nl != std::string::npos) {
            answer = stdout_buffer_.substr(0, nl);
            stdout_buffer_.erase(0, nl + 1);
            have_answer = true;
          } else if (stdout_buffer_.size() > kMaxAnswerBytes) {
            stop(0.0);
            AR_FAIL(label_, ": an answer line longer than ", kMaxAnswerBytes >> 20, " MiB without a newline");
          }
        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {  // EOF: it has exited
          const std::string partial = stdout_buffer_;
          stdout_buffer_.clear();
          const std::string how = reap(2.0);
          return ended(Outcome::exited,
                       str_cat("the program ", how, " without answering",
                               partial.empty() ? "" : " (it wrote '" + partial.substr(0, 200) + "' with no newline)"));
        }
      }
    }
  }
}

void RewardProcess::stop(double grace_seconds) {
  if (pid_ <= 0) return;
  ::shutdown(stdin_fd_, SHUT_WR);  // EOF on the program's stdin: a well-behaved program exits now
  reap(grace_seconds);
  stdout_buffer_.clear();
}

}  // namespace anchor::rewards
