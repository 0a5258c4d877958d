// anchor-rl: RL fine-tuning of language models with attention-derived credit maps.
#include <CLI/CLI.hpp>

#include <malloc.h>

#include <csignal>
#include <cstdlib>

#include <algorithm>
#include <iostream>
#include <vector>

#include "trainer/cli/commands.h"
#include "trainer/common/error.h"
#include "trainer/distributed/communicator.h"

namespace {

// An error on one rank of a data-parallel job ends the whole job (MPI_Abort), naming the rank;
// otherwise the other ranks would wait for it in their next collective.
// Levenshtein distance, to suggest the command a typo meant.
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

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
  // Past a file size limit (ulimit -f) a write should fail with EFBIG and be reported, not kill
  // the process with SIGXFSZ.
  std::signal(SIGXFSZ, SIG_IGN);
  CLI::App app{"anchor-rl: reinforcement-learning fine-tuning with attention credit maps"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "anchor-rl 0.1.0");
  std::vector<anchor::cli::Action> actions;
  actions.push_back(anchor::cli::register_train(app));
  actions.push_back(anchor::cli::register_sft(app));
  actions.push_back(anchor::cli::register_sft_prepare(app));
  actions.push_back(anchor::cli::register_eval(app));
  actions.push_back(anchor::cli::register_generate(app));
  actions.push_back(anchor::cli::register_credit(app));
  actions.push_back(anchor::cli::register_credit_stats(app));
  actions.push_back(anchor::cli::register_chat(app));
  actions.push_back(anchor::cli::register_checkpoint(app));
  actions.push_back(anchor::cli::register_config(app));
  actions.push_back(anchor::cli::register_plan(app));
  actions.push_back(anchor::cli::register_ablate(app));
  actions.push_back(anchor::cli::register_reward_server(app));
  actions.push_back(anchor::cli::register_export(app));
  // A first word that is no command (`anchor-rl trian`): name it and suggest the closest.
  if (argc >= 2 && argv[1][0] != '-') {
    const std::string word = argv[1];
    std::string names, closest;
    size_t best = std::string::npos;
    for (const CLI::App* sub : app.get_subcommands({})) {
      if (sub->get_name() == word) {
        best = 0;
        break;
      }
      names += (names.empty() ? "" : ", ") + sub->get_name();
      const size_t d = edit_distance(word, sub->get_name());
      if (d < best) best = d, closest = sub->get_name();
    }
    if (best != 0) {
      std::cerr << "anchor-rl: error: unknown command '" << word << "'"
                << (best <= 2 ? "; did you mean '" + closest + "'?" : "") << " (commands: " << names << ")\n";
      return 1;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help / --version exit 0; every usage error exits 1 (as every other error).
    return app.exit(e) == 0 ? 0 : 1;
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
    // The message names the file, line or key at fault; where in anchor-rl it was checked is
    // for developers (ANCHOR_ERROR_LOCATIONS=1).
    const char* locations = std::getenv("ANCHOR_ERROR_LOCATIONS");
    const bool locate = locations != nullptr && std::string(locations) == "1" && !e.location().empty();
    return fail("error: ", std::string(e.what()) + (locate ? " [" + e.location() + "]" : ""), 1);
  } catch (const std::exception& e) {
    return fail("internal error: ", e.what(), 2);
  }
}
