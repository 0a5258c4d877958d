// The offline credit viewer: one self-contained HTML page (no network, no external files)
// that shows a credit.json report — tokens coloured by γ under a chosen strategy or by a
// metric, role markers (preplan / anchor / dominated / intro), sentences shaded by receiver
// score, a legend, and the per-sentence table (suppression / resampling when present).
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace anchor {

std::string credit_html(const nlohmann::json& report, const std::string& title);

}  // namespace anchor
