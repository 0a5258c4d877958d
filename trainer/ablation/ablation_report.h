// The report of an ablation study (docs/ablations.md): the statistics of ablation_statistics.h
// over the runs found in the ledger, as JSON (every number) and a Markdown table. Torch-free.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "trainer/ablation/ablation_spec.h"
#include "trainer/ablation/ablation_statistics.h"

namespace anchor {

struct AblationReport {
  nlohmann::json json;
  std::string markdown;
};

// `runs`: every finished run of the spec's arms; arms without runs are listed as such.
AblationReport make_ablation_report(const AblationSpec& spec, const std::vector<RunCurve>& runs);

}  // namespace anchor
