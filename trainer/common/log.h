// Logging facade over spdlog. Only log.cpp includes spdlog, so spdlog is compiled against
// Debian's fmt and never sees the fmt headers that LibTorch ships. Callers build messages
// with anchor::str_cat.
#pragma once

#include <string>

namespace anchor::log {

enum class Level { debug, info, warn, error };

void set_level(Level level);
// Prepended to every message (data-parallel runs: "rank R of N: ").
void set_prefix(const std::string& prefix);
// Adds a log file next to the console sink (the run directory's log).
void add_file_sink(const std::string& path);
void write(Level level, const std::string& message);

inline void debug(const std::string& m) { write(Level::debug, m); }
inline void info(const std::string& m) { write(Level::info, m); }
inline void warn(const std::string& m) { write(Level::warn, m); }
inline void error(const std::string& m) { write(Level::error, m); }

}  // namespace anchor::log
