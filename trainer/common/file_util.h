// Small file helpers: whole-file reads, atomic writes, file checksums.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>

namespace anchor {

std::string read_text_file(const std::string& path);
// Parses JSON; a syntax error names the file, line and column.
nlohmann::json read_json_file(const std::string& path);
// Writes through `write` to "path.tmp-<pid>" then renames, so a reader never sees a half-written
// file; a failed write (disk full, file size limit) removes the temporary file and is an error
// naming `path` and the reason.
void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& write);
void write_text_file_atomic(const std::string& path, const std::string& contents);

// XXH3-64 of a file, read in chunks; an unreadable file is an error naming it.
uint64_t file_xxh3(const std::string& path);
// 16 lower-case hex digits.
std::string xxh3_hex(uint64_t hash);

}  // namespace anchor
