// Helpers shared by the unit tests: fixture and scratch directories.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace anchor::test {

// ctest sets ANCHOR_TEST_ROOT (build/test_data): fixtures/ made by
// tests/python/make_hf_fixtures.py, scratch/ for files the tests write.
inline std::string test_root() {
  const char* dir = std::getenv("ANCHOR_TEST_ROOT");
  return dir ? dir : "";
}

// SmolLM2-135M-Instruct (ctest's smollm2_model test puts it there).
inline std::string smollm2_dir() { return ANCHOR_SMOLLM2_DIR_FOR_TESTS; }

inline std::string fixtures_dir() { return test_root().empty() ? "" : test_root() + "/fixtures"; }

inline std::filesystem::path scratch_root() {
  return test_root().empty() ? std::filesystem::temp_directory_path() : std::filesystem::path(test_root()) / "scratch";
}

#define ANCHOR_REQUIRE_FIXTURES()                                                          \
  do {                                                                                    \
    if (::anchor::test::fixtures_dir().empty())                                           \
      GTEST_FAIL() << "ANCHOR_TEST_ROOT is not set: run through ctest (fixture hf_models)"; \
  } while (0)

// A fresh scratch directory for this test, removed first if it exists.
inline std::filesystem::path scratch_dir(const std::string& name) {
  std::filesystem::path dir = scratch_root() / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// Copies a fixture model directory into a scratch directory that a test may damage.
inline std::filesystem::path copy_fixture(const std::string& model, const std::string& name) {
  auto dir = scratch_dir(name);
  std::filesystem::copy(std::filesystem::path(fixtures_dir()) / model, dir,
                        std::filesystem::copy_options::recursive | std::filesystem::copy_options::overwrite_existing);
  return dir;
}

// Runs `fn` and returns the anchor::Error message it throws ("" if none).
template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace anchor::test
