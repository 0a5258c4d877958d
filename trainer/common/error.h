// Errors that name their origin. Every fallible step in anchor-rl throws anchor::Error whose
// message says which file, line, tensor or config key was wrong and what was expected; the
// source location of the check that failed travels beside it (location()), for developers:
// users see the message, `ANCHOR_ERROR_LOCATIONS=1` adds the location. Library code never
// calls exit() or abort(); the CLI catches and reports.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace anchor {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message, std::string location = "")
      : std::runtime_error(message), location_(std::move(location)) {}
  // "trainer/config/train_config.cpp:313" of the check that threw ("" when not known).
  const std::string& location() const { return location_; }

 private:
  std::string location_;
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

// AR_CHECK(cond, parts...): throws anchor::Error (located at this source line) when cond is false.
// Unlike assert it stays in release builds: it guards user input, not programmer invariants.
#define AR_CHECK(cond, ...)                                                       \
  do {                                                                            \
    if (!(cond)) ::anchor::throw_error(__FILE__, __LINE__, ::anchor::str_cat(__VA_ARGS__)); \
  } while (0)

#define AR_FAIL(...) ::anchor::throw_error(__FILE__, __LINE__, ::anchor::str_cat(__VA_ARGS__))
