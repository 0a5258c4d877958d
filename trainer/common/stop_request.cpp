#include "trainer/common/stop_request.h"

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>

namespace anchor {
namespace {

std::atomic<int> signals_received{0};

// Only async-signal-safe calls here: an atomic and write(2).
void on_stop_signal(int sig) {
  const int n = signals_received.fetch_add(1) + 1;
  const char* first =
      "\nanchor-rl: stop requested: finishing the current step, writing a checkpoint, then exiting "
      "(signal again to exit at once)\n";
  const char* second = "\nanchor-rl: second stop signal: exiting now without a checkpoint\n";
  const char* text = n == 1 ? first : second;
  ssize_t ignored = write(STDERR_FILENO, text, std::strlen(text));
  (void)ignored;
  if (n >= 2) _exit(128 + sig);
}

}  // namespace

void install_stop_handlers() {
  struct sigaction action;
  std::memset(&action, 0, sizeof(action));
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
}

bool stop_requested() { return signals_received.load() > 0; }

}  // namespace anchor
