#include "trainer/common/file_util.h"

#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <vector>

#include "trainer/common/error.h"

namespace anchor {

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  AR_CHECK(in.good(), path, ": cannot open for reading (", std::strerror(errno), ")");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

nlohmann::json read_json_file(const std::string& path) {
  const std::string text = read_text_file(path);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    // e.byte is the offset of the error; turn it into line:column for the user.
    size_t line = 1, column = 1;
    for (size_t i = 0; i + 1 < e.byte && i < text.size(); ++i) {
      if (text[i] == '\n') { ++line; column = 1; } else { ++column; }
    }
    AR_FAIL(path, ":", line, ":", column, ": invalid JSON (", e.what(), ")");
  } catch (const nlohmann::json::exception& e) {  // out_of_range: a number too large for any type
    AR_FAIL(path, ": invalid JSON (", e.what(), ")");
  }
}

void write_text_file_atomic(const std::string& path, const std::string& contents) {
  write_file_atomic(path, [&](std::ostream& out) { out.write(contents.data(), static_cast<std::streamsize>(contents.size())); });
}

void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& write) {
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    AR_CHECK(out.good(), tmp, ": cannot open for writing (", std::strerror(errno), ")");
    write(out);
    out.flush();
    if (!out.good()) {
      const std::string reason = std::strerror(errno);
      out.close();
      std::error_code ignored;
      std::filesystem::remove(tmp, ignored);  // never leave a partial file behind
      AR_FAIL(path, ": write failed (", reason, "; disk full or file size limit?)");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  AR_CHECK(!ec, "cannot rename ", tmp, " to ", path, ": ", ec.message());
}

uint64_t file_xxh3(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  AR_CHECK(in.good(), path, ": cannot open for reading (", std::strerror(errno), ")");
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> state(XXH3_createState(), &XXH3_freeState);
  AR_CHECK(state && XXH3_64bits_reset(state.get()) == XXH_OK, "xxh3: cannot initialise the hash state");
  std::vector<char> buffer(4 << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const std::streamsize n = in.gcount();
    if (n > 0) XXH3_64bits_update(state.get(), buffer.data(), static_cast<size_t>(n));
  }
  AR_CHECK(in.eof(), path, ": read failed (", std::strerror(errno), ")");
  return XXH3_64bits_digest(state.get());
}

std::string xxh3_hex(uint64_t hash) {
  char text[17];
  std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(hash));
  return text;
}

}  // namespace anchor
