// SIGTERM / SIGINT are what schedulers (SLURM, Kubernetes) and a user's Ctrl-C send before a
// job is killed. The first one asks the training loop to finish its current step, write a
// checkpoint and exit 0; a second one ends the process at once.
#pragma once

namespace anchor {

// Installs the handlers (idempotent).
void install_stop_handlers();

// Whether a stop was requested (the first signal has arrived).
bool stop_requested();

}  // namespace anchor
