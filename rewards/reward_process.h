// A long-lived child process spoken to in lines: the reward program of an external reward
// component. It runs as `/bin/sh -c COMMAND` in its own process group (Ctrl-C reaches the
// trainer, which finishes its step with the program still alive), dies with the trainer
// (PR_SET_PDEATHSIG; a program that only reads stdin also ends at EOF), and its stderr is
// passed to the trainer's log line by line. Its environment is the trainer's without the MPI
// launcher's variables, plus ANCHOR_REWARD_RANK / ANCHOR_REWARD_WORLD_SIZE. Every wait has a
// deadline: an exchange never hangs.
#pragma once

#include <sys/types.h>

#include <deque>
#include <string>

namespace anchor::rewards {

class RewardProcess {
 public:
  // `label` starts every log line and error ("reward.components[0] (command 'python3 x.py')").
  RewardProcess(std::string command, std::string label);
  ~RewardProcess();
  RewardProcess(const RewardProcess&) = delete;
  RewardProcess& operator=(const RewardProcess&) = delete;

  // Starts the program now (its start-up overlaps whatever the trainer does next). An error
  // when it cannot be spawned at all.
  void start();

  enum class Outcome { answered, exited, timed_out };
  struct Exchange {
    Outcome outcome = Outcome::answered;
    std::string answer;  // the line read back (without '\n'), when answered
    std::string why;     // otherwise: how it ended (exit code / signal / timeout) and its stderr's last lines
  };
  // Writes `request` + '\n' to stdin and reads one line from stdout, within `timeout_seconds`
  // for the whole exchange. Starts the program first when it is not running. A program that
  // exits, or does not answer in time (it is then killed), is reported, not thrown.
  Exchange exchange(const std::string& request, double timeout_seconds);

  // Closes stdin, gives the program `grace_seconds` to exit, then kills its process group.
  void stop(double grace_seconds = 2.0);

 private:
  void drain_stderr(bool until_eof);
  std::string reap(double wait_seconds);  // waits for the exit; "exited with code N" / "killed by signal S"
  std::string stderr_tail() const;
  void close_fds();

  std::string command_, label_;
  pid_t pid_ = -1;
  int stdin_fd_ = -1, stdout_fd_ = -1, stderr_fd_ = -1;
  std::string stdout_buffer_, stderr_partial_;
  std::deque<std::string> stderr_lines_;  // the last few, for errors
};

}  // namespace anchor::rewards
