#include "trainer/common/error.h"

#include <string_view>

namespace anchor {

void throw_error(const char* file, int line, const std::string& message) {
  // Report the path relative to the source tree: shorter and stable across checkouts.
  const std::string_view root = ANCHOR_SOURCE_DIR;
  std::string_view path = file;
  if (path.substr(0, root.size()) == root) path.remove_prefix(root.size());
  throw Error(message, str_cat(path, ":", line));
}

}  // namespace anchor
