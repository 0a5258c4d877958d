// Errors that name their origin. Every fallible step in anchor-rl throws anchor::Error with
// "file:line: message", where message says which file / tensor / config key was wrong and
// what was expected. Library code never calls exit() or abort(); the CLI catches and reports.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace anchor {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Concatenates any streamable values into one string (no fmt: see trainer/common/log.h).
template <typename... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}

[[noreturn]] void throw_error(const char* file, int line, const std::string& message);

}  // namespace anchor

// AR_CHECK(cond, parts...): throws anchor::Error naming this source line when cond is false.
// Unlike assert it stays in release builds: it guards user input, not programmer invariants.
#define AR_CHECK(cond, ...)                                                       \
  do {                                                                            \
    if (!(cond)) ::anchor::throw_error(__FILE__, __LINE__, ::anchor::str_cat(__VA_ARGS__)); \
  } while (0)

#define AR_FAIL(...) ::anchor::throw_error(__FILE__, __LINE__, ::anchor::str_cat(__VA_ARGS__))
