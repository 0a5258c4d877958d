// The manifest of a checkpoint: every file's size and XXH3-64 checksum, written after the
// files and before DONE, so a resume can tell an intact checkpoint from one with a truncated
// file, a flipped byte, a missing file or corrupt JSON (issue 11: a flipped exponent byte in
// model.safetensors used to be trained on silently).
//
//   manifest.json = {"format": "anchor-rl checkpoint manifest", "version": 1, "hash": "xxh3-64",
//                    "files": [{"name": "config.json", "size": 712, "xxh3_64": "5f0c..."}, ...]}
//
// Torch-free, so the parser can be fuzzed on its own.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace anchor {

struct ManifestEntry {
  std::string name;    // a plain file name inside the checkpoint directory (no '/', no "..")
  int64_t size = 0;    // bytes
  uint64_t xxh3 = 0;   // XXH3-64 of the contents, seed 0
};


// Lists every regular file of `dir` (except manifest.json and DONE), sorted by name.
std::vector<ManifestEntry> manifest_of_directory(const std::string& dir);
std::string manifest_to_json(const std::vector<ManifestEntry>& entries);
// Parses manifest.json text; anything malformed is an error naming `origin` and what is wrong.
std::vector<ManifestEntry> parse_manifest(const std::string& text, const std::string& origin);

// Writes DIR/manifest.json for the files now in DIR.
void write_manifest(const std::string& dir);

struct CheckpointCheck {
  bool has_manifest = false;        // false: written before manifests existed (not verifiable)
  std::vector<std::string> problems;  // each names the file and what is wrong; empty = intact
  int64_t files = 0, bytes = 0;       // verified
  bool intact() const { return problems.empty(); }
};

// Checks a checkpoint directory: DONE present, manifest.json readable, and every listed file
// present with the listed size and checksum. A checkpoint without a manifest passes with
// has_manifest = false (the caller warns).
CheckpointCheck verify_checkpoint_directory(const std::string& dir);

}  // namespace anchor
