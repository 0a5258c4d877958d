// Registry<Fn>: a name -> implementation table for one family of interchangeable pieces
// (advantage estimators, policy losses, KL estimators, reward components, credit strategies).
// Filled by an explicit register_builtin_*() call (static self-registration can be dropped by
// the linker). A duplicate name is an error; an unknown name lists the registered ones.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "trainer/common/error.h"

namespace anchor {

template <typename Fn>
class Registry {
 public:
  explicit Registry(std::string family) : family_(std::move(family)) {}

  void add(const std::string& name, Fn fn) {
    AR_CHECK(!entries_.count(name), family_, " '", name, "' is registered twice");
    entries_.emplace(name, std::move(fn));
  }

  bool contains(const std::string& name) const { return entries_.count(name) > 0; }

  const Fn& get(const std::string& name) const {
    auto it = entries_.find(name);
    if (it == entries_.end()) AR_FAIL("unknown ", family_, " '", name, "' (registered: ", joined_names(), ")");
    return it->second;
  }

  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& [name, _] : entries_) out.push_back(name);
    return out;
  }

  std::string joined_names() const {
    std::string out;
    for (const auto& [name, _] : entries_) out += (out.empty() ? "" : ", ") + name;
    return out;
  }

  const std::string& family() const { return family_; }

 private:
  std::string family_;
  std::map<std::string, Fn> entries_;
};

}  // namespace anchor
