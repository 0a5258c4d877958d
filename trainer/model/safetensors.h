// Safetensors I/O (https://huggingface.co/docs/safetensors): an 8-byte little-endian header
// length, a JSON header {name: {dtype, shape, data_offsets}}, then raw little-endian data.
// Reading memory-maps the file and validates every entry against the file size before any
// tensor is touched, so a truncated or corrupt file is an error naming file and tensor.
// No pickle is ever read.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "trainer/model/safetensors_header.h"

namespace anchor {

class SafetensorsFile {
 public:
  // Maps and validates `path`. Throws anchor::Error naming the file (and tensor) on any defect.
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::map<std::string, SafetensorsEntry>& entries() const { return entries_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool contains(const std::string& name) const { return entries_.count(name) > 0; }

  // A copy of tensor `name` in its stored dtype (CPU, contiguous, owns its memory).
  at::Tensor load(const std::string& name) const;

 private:
  std::string path_;
  const uint8_t* mapped_ = nullptr;
  size_t mapped_size_ = 0;
  uint64_t data_start_ = 0;
  std::map<std::string, SafetensorsEntry> entries_;
  std::map<std::string, std::string> metadata_;
};

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// Writes tensors (any device; copied to CPU, contiguous) atomically to `path`.
void write_safetensors(const std::string& path, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// A model directory's tensors: `model.safetensors`, or shards listed by
// `model.safetensors.index.json`. Maps tensor name -> the file that holds it.
class SafetensorsCheckpoint {
 public:
  explicit SafetensorsCheckpoint(const std::string& model_dir);
  std::vector<std::string> names() const;
  bool contains(const std::string& name) const { return where_.count(name) > 0; }
  const SafetensorsEntry& entry(const std::string& name) const;
  const std::string& file_of(const std::string& name) const;
  at::Tensor load(const std::string& name) const;

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> where_;
};

// Writes `tensors` into model_dir as one model.safetensors, or as
// model-0000i-of-0000n.safetensors + model.safetensors.index.json when their total size
// exceeds max_shard_bytes (0 = never shard).
void write_safetensors_checkpoint(const std::string& model_dir, const NamedTensors& tensors,
                                  uint64_t max_shard_bytes = 0);

}  // namespace anchor
