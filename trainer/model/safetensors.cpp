#include "trainer/model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <torch/torch.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "trainer/common/error.h"
#include "trainer/common/file_util.h"

namespace anchor {
namespace {

using nlohmann::json;

struct DtypeInfo {
  const char* name;
  at::ScalarType type;
  size_t bytes;
};

constexpr DtypeInfo kDtypes[] = {
    {"F64", at::kDouble, 8}, {"F32", at::kFloat, 4},  {"F16", at::kHalf, 2},
    {"BF16", at::kBFloat16, 2}, {"I64", at::kLong, 8}, {"I32", at::kInt, 4},
    {"I16", at::kShort, 2}, {"I8", at::kChar, 1},      {"U8", at::kByte, 1},
    {"BOOL", at::kBool, 1},
};

const DtypeInfo* find_dtype(const std::string& name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}

const DtypeInfo& dtype_of(at::ScalarType type, const std::string& tensor) {
  for (const auto& d : kDtypes)
    if (d.type == type) return d;
  AR_FAIL("cannot write tensor '", tensor, "': dtype ", c10::toString(type), " has no safetensors code");
}

}  // namespace

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  AR_CHECK(fd >= 0, path, ": cannot open (", std::strerror(errno), ")");
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    AR_FAIL(path, ": cannot stat (", std::strerror(errno), ")");
  }
  mapped_size_ = static_cast<size_t>(st.st_size);
  if (mapped_size_ < 8) {  // (mmap of an empty file fails)
    ::close(fd);
    AR_FAIL(path, ": truncated safetensors file (", mapped_size_, " bytes, the 8-byte header length is missing)");
  }
  void* mapped = ::mmap(nullptr, mapped_size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  AR_CHECK(mapped != MAP_FAILED, path, ": mmap failed (", std::strerror(errno), ")");
  mapped_ = static_cast<const uint8_t*>(mapped);

  try {
    SafetensorsHeader header = parse_safetensors_header(mapped_, mapped_size_, path);
    data_start_ = header.data_start;
    entries_ = std::move(header.entries);
    metadata_ = std::move(header.metadata);
  } catch (...) {
    ::munmap(const_cast<uint8_t*>(mapped_), mapped_size_);
    mapped_ = nullptr;
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (mapped_ != nullptr) ::munmap(const_cast<uint8_t*>(mapped_), mapped_size_);
}

at::Tensor SafetensorsFile::load(const std::string& name) const {
  auto it = entries_.find(name);
  AR_CHECK(it != entries_.end(), path_, ": no tensor named '", name, "'");
  const SafetensorsEntry& e = it->second;
  const DtypeInfo* dtype = find_dtype(e.dtype);
  at::Tensor out = torch::empty(e.shape, torch::TensorOptions().dtype(dtype->type));
  if (e.end > e.begin) std::memcpy(out.data_ptr(), mapped_ + data_start_ + e.begin, e.end - e.begin);
  return out;
}

void write_safetensors(const std::string& path, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<at::Tensor> cpu;
  cpu.reserve(tensors.size());
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    AR_CHECK(!header.contains(name), "cannot write ", path, ": duplicate tensor name '", name, "'");
    const DtypeInfo& dtype = dtype_of(tensor.scalar_type(), name);
    at::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * dtype.bytes;
    header[name] = {{"dtype", dtype.name}, {"shape", t.sizes().vec()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    cpu.push_back(std::move(t));
  }
  std::string header_text = header.dump();
  header_text.append((8 - header_text.size() % 8) % 8, ' ');  // keep the data 8-byte aligned

  write_file_atomic(path, [&](std::ostream& out) {
    uint8_t len_bytes[8];
    uint64_t len = header_text.size();
    for (int i = 0; i < 8; ++i) len_bytes[i] = static_cast<uint8_t>(len >> (8 * i));
    out.write(reinterpret_cast<const char*>(len_bytes), 8);
    out.write(header_text.data(), static_cast<std::streamsize>(header_text.size()));
    for (const auto& t : cpu)
      out.write(static_cast<const char*>(t.const_data_ptr()), static_cast<std::streamsize>(t.nbytes()));
  });
}

SafetensorsCheckpoint::SafetensorsCheckpoint(const std::string& model_dir) {
  namespace fs = std::filesystem;
  const fs::path dir(model_dir);
  const fs::path single = dir / "model.safetensors";
  const fs::path index = dir / "model.safetensors.index.json";
  if (fs::exists(index)) {
    const json j = read_json_file(index.string());
    AR_CHECK(j.contains("weight_map") && j.at("weight_map").is_object(), index.string(),
             ": expected an object 'weight_map' {tensor: shard file}");
    std::map<std::string, size_t> shard_ids;
    for (const auto& [name, file] : j.at("weight_map").items()) {
      AR_CHECK(file.is_string(), index.string(), ": weight_map['", name, "'] must be a file name");
      const std::string shard = file.get<std::string>();
      AR_CHECK(shard.find('/') == std::string::npos, index.string(), ": shard '", shard,
               "' must be a file name inside the model directory");
      auto [it, inserted] = shard_ids.emplace(shard, files_.size());
      if (inserted) files_.push_back(std::make_unique<SafetensorsFile>((dir / shard).string()));
      AR_CHECK(files_[it->second]->contains(name), (dir / shard).string(), ": tensor '", name,
               "' is listed in ", index.string(), " but missing from the shard");
      where_[name] = it->second;
    }
    for (const auto& file : files_)
      for (const auto& [name, _] : file->entries())
        AR_CHECK(where_.count(name), file->path(), ": tensor '", name, "' is not listed in ", index.string());
  } else {
    AR_CHECK(fs::exists(single), model_dir, ": no model.safetensors or model.safetensors.index.json ",
             "(anchor-rl reads safetensors only; convert pickle checkpoints with transformers first)");
    files_.push_back(std::make_unique<SafetensorsFile>(single.string()));
    for (const auto& [name, _] : files_[0]->entries()) where_[name] = 0;
  }
}

std::vector<std::string> SafetensorsCheckpoint::names() const {
  std::vector<std::string> out;
  for (const auto& [name, _] : where_) out.push_back(name);
  return out;
}

const SafetensorsEntry& SafetensorsCheckpoint::entry(const std::string& name) const {
  return files_[where_.at(name)]->entries().at(name);
}

const std::string& SafetensorsCheckpoint::file_of(const std::string& name) const {
  return files_[where_.at(name)]->path();
}

at::Tensor SafetensorsCheckpoint::load(const std::string& name) const {
  auto it = where_.find(name);
  AR_CHECK(it != where_.end(), "no tensor named '", name, "' in the checkpoint");
  return files_[it->second]->load(name);
}

void write_safetensors_checkpoint(const std::string& model_dir, const NamedTensors& tensors,
                                  uint64_t max_shard_bytes) {
  namespace fs = std::filesystem;
  const fs::path dir(model_dir);
  fs::create_directories(dir);
  uint64_t total = 0;
  for (const auto& [_, t] : tensors) total += t.nbytes();
  const std::map<std::string, std::string> metadata = {{"format", "pt"}};
  if (max_shard_bytes == 0 || total <= max_shard_bytes) {
    write_safetensors((dir / "model.safetensors").string(), tensors, metadata);
    fs::remove(dir / "model.safetensors.index.json");
    return;
  }
  // Greedy split in the given order; a tensor larger than the limit gets a shard of its own.
  std::vector<NamedTensors> shards(1);
  uint64_t current = 0;
  for (const auto& named : tensors) {
    const uint64_t bytes = named.second.nbytes();
    if (!shards.back().empty() && current + bytes > max_shard_bytes) {
      shards.emplace_back();
      current = 0;
    }
    shards.back().push_back(named);
    current += bytes;
  }
  json weight_map = json::object();
  const size_t n = shards.size();
  for (size_t i = 0; i < n; ++i) {
    char file[64];
    std::snprintf(file, sizeof(file), "model-%05zu-of-%05zu.safetensors", i + 1, n);
    write_safetensors((dir / file).string(), shards[i], metadata);
    for (const auto& [name, _] : shards[i]) weight_map[name] = file;
  }
  const json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  write_text_file_atomic((dir / "model.safetensors.index.json").string(), index.dump(2) + "\n");
  fs::remove(dir / "model.safetensors");
}

}  // namespace anchor
