// anchor-rl: RL fine-tuning of language models with attention-derived credit maps.
#include <CLI/CLI.hpp>

#include <malloc.h>

#include <iostream>

#include "trainer/cli/commands.h"
#include "trainer/common/error.h"
#include "trainer/distributed/communicator.h"

namespace {

// An error on one rank of a data-parallel job ends the whole job (MPI_Abort), naming the rank;
// otherwise the other ranks would wait for it in their next collective.
int fail(const std::string& kind, const std::string& message, int code) {
  anchor::dist::Communicator& world = anchor::dist::Communicator::world();
  if (world.distributed()) world.abort(kind + message, code);
  std::cerr << "anchor-rl: " << kind << message << "\n";
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  // glibc returns large freed blocks to the kernel and maps them again on the next step, so
  // every [batch, vocab] temporary costs thousands of page faults (measured: ~8% of a SmolLM2
  // decode step). Keep blocks up to 32 MB (glibc's maximum) in the heap instead.
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024);
  CLI::App app{"anchor-rl: reinforcement-learning fine-tuning with attention credit maps"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "anchor-rl 0.1.0");
  std::vector<anchor::cli::Action> actions;
  actions.push_back(anchor::cli::register_train(app));
  actions.push_back(anchor::cli::register_sft(app));
  actions.push_back(anchor::cli::register_eval(app));
  actions.push_back(anchor::cli::register_generate(app));
  actions.push_back(anchor::cli::register_credit(app));
  actions.push_back(anchor::cli::register_credit_stats(app));
  actions.push_back(anchor::cli::register_chat(app));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  // Under mpirun / srun only training is data parallel; any other command would just run
  // K identical copies that write the same files.
  if (anchor::dist::Communicator::world().distributed() && !app.got_subcommand("train"))
    return fail("error: ", "only `anchor-rl train` runs data parallel under mpirun / srun; run this command as one process",
                1);
  try {
    // Each action returns -1 unless its subcommand was the one given.
    for (auto& action : actions) {
      const int rc = action();
      if (rc >= 0) return rc;
    }
    return 0;
  } catch (const anchor::Error& e) {
    return fail("error: ", e.what(), 1);
  } catch (const std::exception& e) {
    return fail("internal error: ", e.what(), 2);
  }
}
