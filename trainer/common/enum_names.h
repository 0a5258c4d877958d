// Names of enum values, for config choices that are parsed once at load: a choice spelled in
// YAML ("exclude") becomes an enum (SinkHandling::exclude) in the config struct, and the same
// table writes the resolved config, lists the allowed values in errors and in the generated
// config reference (docs/config.md).
//
//   template <> struct EnumNames<SinkHandling> {
//     static constexpr std::pair<SinkHandling, const char*> values[] = {
//         {SinkHandling::keep, "keep"}, {SinkHandling::exclude, "exclude"}};
//   };
#pragma once

#include <string>
#include <string_view>
#include <utility>

namespace anchor {

template <class E>
struct EnumNames;

template <class E>
concept NamedEnum = requires { EnumNames<E>::values; };

template <NamedEnum E>
const char* enum_name(E value) {
  for (const auto& [v, name] : EnumNames<E>::values)
    if (v == value) return name;
  return "?";
}

// Whether `name` is one of the names; sets `value` when it is.
template <NamedEnum E>
bool enum_from_name(std::string_view name, E& value) {
  for (const auto& [v, n] : EnumNames<E>::values)
    if (name == n) {
      value = v;
      return true;
    }
  return false;
}

// "a | b | c" (sep " | ") or "a, b, c".
template <NamedEnum E>
std::string enum_names_joined(const char* sep = ", ") {
  std::string out;
  for (const auto& [v, name] : EnumNames<E>::values) out += (out.empty() ? "" : sep) + std::string(name);
  return out;
}

}  // namespace anchor
