// Small file helpers shared by the checkpoint readers and writers.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace anchor {

std::string read_text_file(const std::string& path);
// Parses JSON; a syntax error names the file, line and column.
nlohmann::json read_json_file(const std::string& path);
// Writes to "path.tmp-<pid>" then renames, so a reader never sees a half-written file.
void write_text_file_atomic(const std::string& path, const std::string& contents);

}  // namespace anchor
