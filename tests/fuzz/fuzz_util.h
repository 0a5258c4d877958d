// Shared by the harnesses: a per-process scratch directory (the config, dataset and tokenizer
// readers take paths) under $ANCHOR_FUZZ_SCRATCH (scripts/fuzz.sh sets it and removes it
// afterwards), else on tmpfs when there is one; and writing an input there.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace anchor::fuzz {

inline const std::filesystem::path& scratch() {
  static const std::filesystem::path dir = [] {
    const char* configured = std::getenv("ANCHOR_FUZZ_SCRATCH");
    const std::filesystem::path root = configured != nullptr               ? configured
                                       : std::filesystem::exists("/dev/shm") ? "/dev/shm"
                                                                            : "/tmp";
    auto d = root / ("anchor-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

inline std::string write(const std::string& name, const char* data, size_t size) {
  const std::string path = (scratch() / name).string();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data, static_cast<std::streamsize>(size));
  return path;
}

}  // namespace anchor::fuzz
