// A TrainPoint as a JSON object whose keys are metrics.jsonl's: the one field list that the
// metrics reader, the ledger's training file (columns of these keys) and the report (rows) share.
// A key missing from a metrics line reads as the field's default.
#pragma once

#include <nlohmann/json.hpp>

#include "trainer/ablation/ablation_statistics.h"

namespace anchor {

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(TrainPoint, step, accuracy, entropy, response_length, grad_norm,
                                                groups_kept, groups_seen)

}  // namespace anchor
