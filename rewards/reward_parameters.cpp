#include "rewards/reward_parameters.h"

#include "trainer/common/error.h"

namespace anchor::rewards {

void reject_unknown_parameters(const nlohmann::json& params, const std::string& key,
                               std::initializer_list<const char*> allowed) {
  if (params.is_null()) return;
  AR_CHECK(params.is_object(), key, ": parameters must be a mapping");
  for (const auto& [name, _] : params.items()) {
    bool ok = false;
    for (const char* a : allowed) ok = ok || name == a;
    std::string list;
    for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
    AR_CHECK(ok, key, ".", name, ": unknown parameter (allowed: ", list.empty() ? "none" : list, ")");
  }
}

}  // namespace anchor::rewards
