#include "trainer/common/error.h"

#include <cstring>

namespace anchor {

void throw_error(const char* file, int line, const std::string& message) {
  // Report the path relative to the source tree: shorter and stable across checkouts.
  const char* rel = std::strstr(file, "trainer/");
  if (rel == nullptr) rel = std::strstr(file, "tests/");
  throw Error(str_cat(rel ? rel : file, ":", line, ": ", message));
}

}  // namespace anchor
