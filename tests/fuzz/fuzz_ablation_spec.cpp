// The ablation spec reader (`anchor-rl ablate SPEC.yaml`). Every failure must be an anchor::Error
// naming the spec and the key; a spec that reads must also give a report (no runs yet) without
// anything else escaping. A crash is a bug.
#include <string>

#include "trainer/ablation/ablation_report.h"
#include "trainer/ablation/ablation_spec.h"
#include "trainer/common/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const anchor::AblationSpec spec = anchor::parse_ablation_spec(text, "spec.yaml");
    if (spec.arms.size() < 2 || spec.seeds.empty() || spec.control().name.empty()) __builtin_trap();
    anchor::AblationSpec small = spec;
    small.bootstrap_resamples = 100;  // the report's cost, not its code, grows with resamples
    anchor::make_ablation_report(small, {});
  } catch (const anchor::Error&) {
  }
  return 0;
}
