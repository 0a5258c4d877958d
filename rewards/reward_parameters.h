// Checking a reward component's parameters (the keys beside name and weight in
// reward.components[i]): shared by the built-in components and the external one.
#pragma once

#include <nlohmann/json.hpp>

#include <initializer_list>
#include <string>

namespace anchor::rewards {

// An error naming `key`.NAME for every parameter not in `allowed` (listed in the message);
// null parameters are none, anything but a mapping is an error.
void reject_unknown_parameters(const nlohmann::json& params, const std::string& key,
                               std::initializer_list<const char*> allowed);

}  // namespace anchor::rewards
