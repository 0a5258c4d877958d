#include "trainer/checkpoint/checkpoint_manifest.h"

#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include <nlohmann/json.hpp>

#include "trainer/common/error.h"
#include "trainer/common/file_util.h"

namespace anchor {

namespace fs = std::filesystem;

namespace {

constexpr const char* kFormat = "anchor-rl checkpoint manifest";
constexpr const char* kManifest = "manifest.json";
constexpr const char* kDone = "DONE";

bool plain_file_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

}  // namespace

std::vector<ManifestEntry> manifest_of_directory(const std::string& dir) {
  std::vector<ManifestEntry> out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file() || name == kManifest || name == kDone) continue;
    out.push_back({name, static_cast<int64_t>(entry.file_size()), file_xxh3(entry.path().string())});
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

std::string manifest_to_json(const std::vector<ManifestEntry>& entries) {
  nlohmann::json files = nlohmann::json::array();
  for (const auto& e : entries) files.push_back({{"name", e.name}, {"size", e.size}, {"xxh3_64", xxh3_hex(e.xxh3)}});
  const nlohmann::json j = {{"format", kFormat}, {"version", 1}, {"hash", "xxh3-64"}, {"files", files}};
  return j.dump(1) + "\n";
}

std::vector<ManifestEntry> parse_manifest(const std::string& text, const std::string& origin) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    AR_FAIL(origin, ": not valid JSON (", e.what(), ")");
  }
  // Compared as JSON values: j.value("format", "") would throw a type error on a number.
  const auto field = [&](const char* key) { return j.is_object() && j.contains(key) ? j[key] : nlohmann::json(); };
  AR_CHECK(field("format") == kFormat, origin, ": not an anchor-rl checkpoint manifest");
  AR_CHECK(field("version") == 1, origin, ": manifest version ", field("version").dump(),
           " is not the one this build reads (1)");
  AR_CHECK(field("hash") == "xxh3-64", origin, ": hash ", field("hash").dump(), " is not \"xxh3-64\"");
  AR_CHECK(j.contains("files") && j["files"].is_array(), origin, ": 'files' must be a list");
  std::vector<ManifestEntry> out;
  for (size_t i = 0; i < j["files"].size(); ++i) {
    const auto& f = j["files"][i];
    const std::string where = str_cat(origin, ": files[", i, "]");
    AR_CHECK(f.is_object() && f.contains("name") && f["name"].is_string() && f.contains("size") &&
                 f["size"].is_number_integer() && f.contains("xxh3_64") && f["xxh3_64"].is_string(),
             where, ": expected {\"name\": string, \"size\": integer, \"xxh3_64\": 16 hex digits}");
    ManifestEntry e;
    e.name = f["name"].get<std::string>();
    AR_CHECK(plain_file_name(e.name) && e.name != kManifest && e.name != kDone, where, ": '", e.name,
             "' is not a file name inside the checkpoint");
    e.size = f["size"].get<int64_t>();
    AR_CHECK(e.size >= 0, where, ": negative size ", e.size);
    const std::string hex = f["xxh3_64"].get<std::string>();
    AR_CHECK(hex.size() == 16 && hex.find_first_not_of("0123456789abcdef") == std::string::npos, where,
             ": xxh3_64 '", hex, "' is not 16 lowercase hex digits");
    e.xxh3 = std::stoull(hex, nullptr, 16);
    for (const auto& seen : out) AR_CHECK(seen.name != e.name, where, ": '", e.name, "' listed twice");
    out.push_back(std::move(e));
  }
  return out;
}

void write_manifest(const std::string& dir) {
  write_text_file_atomic((fs::path(dir) / kManifest).string(), manifest_to_json(manifest_of_directory(dir)));
}

CheckpointCheck verify_checkpoint_directory(const std::string& dir) {
  CheckpointCheck check;
  const fs::path root(dir);
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    check.problems.push_back(str_cat(dir, ": not a directory"));
    return check;
  }
  if (!fs::exists(root / kDone, ec))
    check.problems.push_back("DONE missing: the checkpoint was interrupted while being written");
  const fs::path manifest_path = root / kManifest;
  if (!fs::exists(manifest_path, ec)) {
    // Checkpoints of schema 1 predate manifests; any later one must have one.
    int schema = -1;
    try {
      schema = read_json_file((root / "trainer_state.json").string()).value("schema_version", -1);
    } catch (const std::exception&) {
    }
    if (schema != 1) check.problems.push_back("manifest.json missing");
    return check;
  }
  check.has_manifest = true;
  std::vector<ManifestEntry> entries;
  try {
    entries = parse_manifest(read_text_file(manifest_path.string()), "manifest.json");
  } catch (const std::exception& e) {
    check.problems.push_back(e.what());
    return check;
  }
  for (const auto& e : entries) {
    const fs::path file = root / e.name;
    if (!fs::is_regular_file(file, ec)) {
      check.problems.push_back(str_cat(e.name, ": missing"));
      continue;
    }
    const auto size = static_cast<int64_t>(fs::file_size(file, ec));
    if (ec) {
      check.problems.push_back(str_cat(e.name, ": cannot read its size (", ec.message(), ")"));
      continue;
    }
    if (size != e.size) {
      check.problems.push_back(str_cat(e.name, ": ", size, " bytes, the manifest says ", e.size,
                                       size < e.size ? " (truncated)" : " (grown)"));
      continue;
    }
    try {
      const uint64_t actual = file_xxh3(file.string());
      if (actual != e.xxh3) {
        check.problems.push_back(str_cat(e.name, ": checksum ", xxh3_hex(actual), " differs from the manifest's ",
                                         xxh3_hex(e.xxh3), " (contents changed: corrupted or edited)"));
        continue;
      }
    } catch (const std::exception& ex) {
      check.problems.push_back(ex.what());
      continue;
    }
    ++check.files;
    check.bytes += size;
  }
  return check;
}

}  // namespace anchor
