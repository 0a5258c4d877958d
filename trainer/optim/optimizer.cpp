#include "trainer/optim/optimizer.h"

#include "trainer/common/error.h"
#include "trainer/optim/replicated_adamw.h"
#include "trainer/optim/sharded_adamw.h"

namespace anchor {

std::unique_ptr<Optimizer> make_optimizer(const std::vector<at::Tensor>& parameters, const std::vector<std::string>& names,
                                          const AdamWSettings& settings, int zero_stage, dist::Communicator* comm) {
  AR_CHECK(parameters.size() == names.size(), "make_optimizer: ", parameters.size(), " parameters, ", names.size(),
           " names");
  AR_CHECK(zero_stage >= 0 && zero_stage <= 2, "distributed.zero_stage: expected 0, 1 or 2, got ", zero_stage);
  if (zero_stage == 0) return make_replicated_adamw(parameters, names, settings, comm);
  return make_sharded_adamw(parameters, names, settings, zero_stage, comm);
}

}  // namespace anchor
