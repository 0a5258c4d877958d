#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <fstream>

#include "tests/unit/test_util.h"
#include "trainer/model/safetensors.h"

namespace anchor {
namespace {

using test::error_of;
using test::scratch_dir;
using ::testing::HasSubstr;

NamedTensors sample_tensors() {
  torch::manual_seed(0);
  return {
      {"a.f32", torch::randn({3, 4})},
      {"b.bf16", torch::randn({5}).to(torch::kBFloat16)},
      {"c.f16", torch::randn({2, 2, 2}).to(torch::kHalf)},
      {"d.i64", torch::arange(7, torch::kLong)},
      {"e.scalar", torch::tensor(3.5f).reshape({})},
      {"f.empty", torch::zeros({0, 3})},
  };
}

TEST(Safetensors, RoundTripKeepsDtypeShapeAndValues) {
  const auto path = (scratch_dir("st_roundtrip") / "x.safetensors").string();
  const auto tensors = sample_tensors();
  write_safetensors(path, tensors, {{"format", "pt"}});
  SafetensorsFile file(path);
  EXPECT_EQ(file.metadata().at("format"), "pt");
  ASSERT_EQ(file.entries().size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    at::Tensor back = file.load(name);
    EXPECT_EQ(back.scalar_type(), t.scalar_type()) << name;
    EXPECT_EQ(back.sizes(), t.sizes()) << name;
    EXPECT_TRUE(torch::equal(back, t)) << name;
  }
  EXPECT_EQ(file.entries().at("b.bf16").dtype, "BF16");
}

TEST(Safetensors, HeaderIsEightByteAlignedJson) {
  const auto path = (scratch_dir("st_align") / "x.safetensors").string();
  write_safetensors(path, {{"w", torch::ones({3})}});
  std::ifstream in(path, std::ios::binary);
  uint64_t len = 0;
  in.read(reinterpret_cast<char*>(&len), 8);
  EXPECT_EQ(len % 8, 0u);
  std::string header(len, '\0');
  in.read(header.data(), static_cast<std::streamsize>(len));
  EXPECT_EQ(nlohmann::json::parse(header)["w"]["data_offsets"], nlohmann::json({0, 12}));
}

TEST(Safetensors, ShardedCheckpointRoundTrip) {
  const auto dir = scratch_dir("st_sharded");
  NamedTensors tensors;
  for (int i = 0; i < 6; ++i) tensors.emplace_back("t" + std::to_string(i), torch::full({100}, float(i)));
  write_safetensors_checkpoint(dir.string(), tensors, /*max_shard_bytes=*/900);
  EXPECT_TRUE(std::filesystem::exists(dir / "model.safetensors.index.json"));
  EXPECT_TRUE(std::filesystem::exists(dir / "model-00003-of-00003.safetensors"));
  EXPECT_FALSE(std::filesystem::exists(dir / "model.safetensors"));
  SafetensorsCheckpoint ckpt(dir.string());
  EXPECT_EQ(ckpt.names().size(), 6u);
  for (const auto& [name, t] : tensors) EXPECT_TRUE(torch::equal(ckpt.load(name), t)) << name;
  EXPECT_THAT(ckpt.file_of("t5"), HasSubstr("model-00003-of-00003.safetensors"));
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string with_header(const std::string& json, const std::string& data = "") {
  std::string out(8, '\0');
  uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + json + data;
}

TEST(Safetensors, TruncatedFileNamesFileAndTensor) {
  const auto dir = scratch_dir("st_truncated");
  const auto path = (dir / "x.safetensors").string();
  write_safetensors(path, {{"first", torch::ones({4})}, {"second", torch::ones({64})}});
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 10);
  const std::string msg = error_of([&] { SafetensorsFile f(path); });
  EXPECT_THAT(msg, HasSubstr(path));
  EXPECT_THAT(msg, HasSubstr("truncated"));
  EXPECT_THAT(msg, HasSubstr("'second'"));

  write_bytes(path, "abc");
  EXPECT_THAT(error_of([&] { SafetensorsFile f(path); }), HasSubstr("truncated"));
  write_bytes(path, with_header(std::string(50, ' ')).substr(0, 30));
  EXPECT_THAT(error_of([&] { SafetensorsFile f(path); }), HasSubstr("truncated"));
}

TEST(Safetensors, CorruptHeadersAreErrors) {
  const auto path = (scratch_dir("st_corrupt") / "x.safetensors").string();
  write_bytes(path, with_header("{not json"));
  EXPECT_THAT(error_of([&] { SafetensorsFile f(path); }), HasSubstr("corrupt safetensors header"));

  std::string huge(8, '\xff');
  write_bytes(path, huge + "{}");
  EXPECT_THAT(error_of([&] { SafetensorsFile f(path); }), HasSubstr("corrupt safetensors header length"));

  write_bytes(path, with_header(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", std::string(8, '\0')));
  EXPECT_THAT(error_of([&] { SafetensorsFile f(path); }), HasSubstr("do not match shape x dtype"));

  write_bytes(path, with_header(R"({"w":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}})", std::string(8, '\0')));
  EXPECT_THAT(error_of([&] { SafetensorsFile f(path); }), HasSubstr("unsupported dtype 'C64'"));

  write_bytes(path, with_header(R"({"w":{"dtype":"F32","shape":[1]}})", std::string(4, '\0')));
  EXPECT_THAT(error_of([&] { SafetensorsFile f(path); }), HasSubstr("tensor 'w'"));

  // 2^62 x 4 x F32 wraps to 0 bytes in 64 bits: must not pass as an empty tensor.
  write_bytes(path, with_header(R"({"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}})"));
  EXPECT_THAT(error_of([&] { SafetensorsFile f(path); }), HasSubstr("has a shape that needs more than the 0 bytes"));

  // A number too large for any type (found by tests/fuzz/fuzz_safetensors_header): nlohmann's
  // out_of_range, reported like any corrupt header.
  write_bytes(path, with_header(R"({"z":888e88888888888888})"));
  EXPECT_THAT(error_of([&] { SafetensorsFile f(path); }), HasSubstr("corrupt safetensors header"));

  write_bytes(path, with_header("[1,2]"));
  EXPECT_THAT(error_of([&] { SafetensorsFile f(path); }), HasSubstr("expected a JSON object"));
}

TEST(Safetensors, IndexMustMatchShards) {
  const auto dir = scratch_dir("st_index");
  write_safetensors((dir / "shard.safetensors").string(), {{"a", torch::ones({2})}});
  write_bytes((dir / "model.safetensors.index.json").string(),
              R"({"weight_map": {"a": "shard.safetensors", "b": "shard.safetensors"}})");
  const std::string msg = error_of([&] { SafetensorsCheckpoint c(dir.string()); });
  EXPECT_THAT(msg, HasSubstr("'b'"));
  EXPECT_THAT(msg, HasSubstr("missing from the shard"));

  const auto empty = scratch_dir("st_nomodel");
  EXPECT_THAT(error_of([&] { SafetensorsCheckpoint c(empty.string()); }), HasSubstr("no model.safetensors"));
}

}  // namespace
}  // namespace anchor
