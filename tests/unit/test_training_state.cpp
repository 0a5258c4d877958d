// LR schedule values, checkpoint directory rules (atomic, latest, keep-last, incomplete),
// manifests (every corruption kind named, fallback to the newest intact checkpoint), AdamW
// state round trip.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "tests/unit/test_util.h"
#include "trainer/checkpoint/checkpoint.h"
#include "trainer/checkpoint/checkpoint_manifest.h"
#include "trainer/common/file_util.h"
#include "trainer/checkpoint/training_checkpoint.h"
#include "trainer/optim/adamw_state.h"
#include "trainer/optim/lr_schedule.h"

namespace anchor {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

TEST(LrSchedule, WarmupConstantAndCosineHandComputed) {
  OptimSection o;
  o.lr = 1.0;
  o.warmup_steps = 4;
  EXPECT_DOUBLE_EQ(learning_rate_at(0, 10, o), 0.25);
  EXPECT_DOUBLE_EQ(learning_rate_at(3, 10, o), 1.0);
  EXPECT_DOUBLE_EQ(learning_rate_at(9, 10, o), 1.0);
  o.schedule = LrSchedule::cosine;
  o.min_lr_ratio = 0.1;
  // After warmup: progress (step - 4) / 6; halfway (step 7) -> 0.1 + 0.9 * 0.5.
  EXPECT_DOUBLE_EQ(learning_rate_at(4, 10, o), 1.0);
  EXPECT_NEAR(learning_rate_at(7, 10, o), 0.55, 1e-12);
  EXPECT_NEAR(learning_rate_at(10, 10, o), 0.1, 1e-12);
}

Pretrained tiny_pretrained() {
  nlohmann::json j = {{"vocab_size", 120}, {"hidden_size", 16}, {"intermediate_size", 24}, {"num_hidden_layers", 1},
                      {"num_attention_heads", 2}, {"eos_token_id", 2}};
  return Pretrained{LlamaModel(parse_llama_config(j, "tiny"), torch::TensorOptions().dtype(torch::kFloat), 1),
                    Tokenizer::from_sentencepiece((fs::path(test::fixtures_dir()) / "tokenizer.model").string())};
}

TEST(Checkpoint, LatestKeepLastAndIncompleteDirectories) {
  ANCHOR_REQUIRE_FIXTURES();
  const fs::path run = test::scratch_dir("ckpt_rules");
  Pretrained p = tiny_pretrained();
  TrainerState s;
  for (int64_t step : {2, 4, 6}) {
    s.step = step;
    s.data_position = step * 10;
    save_checkpoint(run.string(), s, p, {{"x", torch::ones({2})}}, /*keep_last=*/2);
  }
  EXPECT_FALSE(fs::exists(run / "checkpoints" / "step-00000002"));  // pruned
  EXPECT_TRUE(fs::exists(run / "checkpoints" / "step-00000004" / "DONE"));
  const std::string latest = resolve_checkpoint(run.string(), "latest");
  EXPECT_THAT(latest, HasSubstr("step-00000006"));
  const TrainerState back = load_trainer_state(latest);
  EXPECT_EQ(back.step, 6);
  EXPECT_EQ(back.data_position, 60);
  EXPECT_TRUE(fs::exists(fs::path(latest) / "model.safetensors"));
  fs::remove(run / "checkpoints" / "step-00000004" / "DONE");
  EXPECT_THAT(test::error_of([&] { resolve_checkpoint(run.string(), (run / "checkpoints" / "step-00000004").string()); }),
              HasSubstr("DONE missing"));
  EXPECT_THAT(test::error_of([&] { resolve_checkpoint(test::scratch_dir("ckpt_none").string(), "latest"); }),
              HasSubstr("no checkpoint in"));
  std::ofstream(fs::path(latest) / "trainer_state.json") << R"({"schema_version": 99})";
  EXPECT_THAT(test::error_of([&] { load_trainer_state(latest); }), HasSubstr("schema_version 99"));
}

std::string joined(const CheckpointCheck& c) {
  std::string out;
  for (const auto& p : c.problems) out += p + "\n";
  return out;
}

void overwrite_byte(const fs::path& file, int64_t offset_from_end, char xor_mask) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(-offset_from_end, std::ios::end);
  char c = 0;
  f.read(&c, 1);
  f.seekp(-offset_from_end, std::ios::end);
  c = static_cast<char>(c ^ xor_mask);
  f.write(&c, 1);
}

TEST(CheckpointManifest, XxhashOfKnownInputAndRoundTrip) {
  const fs::path dir = test::scratch_dir("manifest_known");
  std::ofstream(dir / "empty.bin").close();
  std::ofstream(dir / "abc.txt") << "abc";
  // XXH3-64 (seed 0) of "" and "abc", as xxhsum -H3 prints them.
  EXPECT_EQ(xxh3_hex(file_xxh3((dir / "empty.bin").string())), "2d06800538d394c2");
  EXPECT_EQ(xxh3_hex(file_xxh3((dir / "abc.txt").string())), "78af5f94892f3950");
  const auto entries = manifest_of_directory(dir.string());
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].name, "abc.txt");
  EXPECT_EQ(entries[0].size, 3);
  const auto back = parse_manifest(manifest_to_json(entries), "m");
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[1].name, "empty.bin");
  EXPECT_EQ(back[0].xxh3, entries[0].xxh3);
}

TEST(CheckpointManifest, MalformedManifestsAreNamedErrors) {
  const std::string head = R"({"format": "anchor-rl checkpoint manifest", "version": 1, "hash": "xxh3-64", "files": )";
  auto error = [&](const std::string& files) { return test::error_of([&] { parse_manifest(head + files + "}", "M"); }); };
  EXPECT_THAT(test::error_of([&] { parse_manifest("{not json", "M"); }), HasSubstr("M: not valid JSON"));
  EXPECT_THAT(test::error_of([&] { parse_manifest("[]", "M"); }), HasSubstr("not an anchor-rl checkpoint manifest"));
  EXPECT_THAT(error(R"([{"name": "../x", "size": 1, "xxh3_64": "0000000000000000"}])"),
              HasSubstr("files[0]: '../x' is not a file name inside the checkpoint"));
  EXPECT_THAT(error(R"([{"name": "a", "size": -1, "xxh3_64": "0000000000000000"}])"), HasSubstr("negative size"));
  EXPECT_THAT(error(R"([{"name": "a", "size": 1, "xxh3_64": "00zz"}])"), HasSubstr("not 16 lowercase hex digits"));
  EXPECT_THAT(error(R"([{"name": "a", "size": 1, "xxh3_64": "0000000000000000"},
                        {"name": "a", "size": 1, "xxh3_64": "0000000000000000"}])"),
              HasSubstr("files[1]: 'a' listed twice"));
  EXPECT_THAT(error(R"([{"name": "a", "size": "1", "xxh3_64": "0000000000000000"}])"), HasSubstr("files[0]: expected"));
  EXPECT_THAT(error(R"({})"), HasSubstr("'files' must be a list"));
  // Found by tests/fuzz/fuzz_checkpoint_manifest: a field of the wrong type threw a JSON type error.
  EXPECT_THAT(test::error_of([&] { parse_manifest(R"({"format": 1, "files": []})", "M"); }),
              HasSubstr("M: not an anchor-rl checkpoint manifest"));
}

TEST(CheckpointManifest, EveryCorruptionKindIsNamedAndLatestFallsBack) {
  ANCHOR_REQUIRE_FIXTURES();
  const fs::path run = test::scratch_dir("ckpt_integrity");
  Pretrained p = tiny_pretrained();
  TrainerState s;
  // A leftover of a writer killed mid-checkpoint is removed by the next save.
  fs::create_directories(run / "checkpoints" / ".tmp-step-00000001-999999");
  for (int64_t step : {1, 2, 3, 4}) {
    s.step = step;
    save_checkpoint(run.string(), s, p, {{"x", torch::ones({2})}}, /*keep_last=*/4);
  }
  EXPECT_FALSE(fs::exists(run / "checkpoints" / ".tmp-step-00000001-999999"));
  const auto step = [&](int i) { return run / "checkpoints" / checkpoint_name(i); };
  for (int i : {1, 2, 3, 4}) {
    const CheckpointCheck c = verify_checkpoint_directory(step(i).string());
    EXPECT_TRUE(c.intact()) << joined(c);
    EXPECT_TRUE(c.has_manifest);
    EXPECT_GE(c.files, 5);  // config.json, model.safetensors, tokenizer files, trainer state x2
  }
  // A flipped exponent byte of the last weight, a truncated file, a deleted file, corrupt JSON.
  overwrite_byte(step(4) / "model.safetensors", 1, 0x40);
  EXPECT_THAT(joined(verify_checkpoint_directory(step(4).string())),
              HasSubstr("model.safetensors: checksum"));
  fs::resize_file(step(3) / "trainer_state.safetensors", fs::file_size(step(3) / "trainer_state.safetensors") - 7);
  EXPECT_THAT(joined(verify_checkpoint_directory(step(3).string())),
              HasSubstr("trainer_state.safetensors: "));
  EXPECT_THAT(joined(verify_checkpoint_directory(step(3).string())), HasSubstr("(truncated)"));
  fs::remove(step(2) / "config.json");
  EXPECT_THAT(joined(verify_checkpoint_directory(step(2).string())), HasSubstr("config.json: missing"));
  // --resume latest: step 4 (latest), 3 and 2 damaged -> step 1, with the loss in the warning.
  EXPECT_EQ(resolve_checkpoint(run.string(), "latest"), step(1).string());
  // An explicitly named damaged checkpoint is refused, never replaced.
  EXPECT_THAT(test::error_of([&] { resolve_checkpoint(run.string(), step(4).string()); }),
              HasSubstr("is damaged: model.safetensors: checksum"));
  std::ofstream(step(1) / "trainer_state.json", std::ios::app) << "}";
  EXPECT_THAT(joined(verify_checkpoint_directory(step(1).string())), HasSubstr("trainer_state.json: "));
  const std::string none = test::error_of([&] { resolve_checkpoint(run.string(), "latest"); });
  EXPECT_THAT(none, HasSubstr("no intact checkpoint"));
  for (int i : {1, 2, 3, 4}) EXPECT_THAT(none, HasSubstr(checkpoint_name(i) + ": ")) << none;
  // A corrupt manifest, and one that is missing from a schema-2 checkpoint.
  std::ofstream(step(1) / "manifest.json") << "{\"format\": ";
  EXPECT_THAT(joined(verify_checkpoint_directory(step(1).string())), HasSubstr("manifest.json: not valid JSON"));
  fs::remove(step(1) / "manifest.json");
  EXPECT_THAT(joined(verify_checkpoint_directory(step(1).string())), HasSubstr("manifest.json missing"));
}

TEST(CheckpointManifest, LatestNamingAnOlderIntactCheckpointIsUsed) {
  ANCHOR_REQUIRE_FIXTURES();
  // Killed between the rename of step 4 and the update of `latest`: latest still names step 2,
  // which is intact, so the resume redoes steps 3-4 exactly as the first time.
  const fs::path run = test::scratch_dir("ckpt_latest_older");
  Pretrained p = tiny_pretrained();
  TrainerState s;
  for (int64_t step : {2, 4}) {
    s.step = step;
    save_checkpoint(run.string(), s, p, {{"x", torch::ones({2})}}, 3);
  }
  std::ofstream(run / "checkpoints" / "latest") << "step-00000002\n";
  EXPECT_THAT(resolve_checkpoint(run.string(), "latest"), HasSubstr("step-00000002"));
  std::ofstream(run / "checkpoints" / "latest") << "garbage/../x\n";
  EXPECT_THAT(resolve_checkpoint(run.string(), "latest"), HasSubstr("step-00000004"));
}

TEST(Checkpoint, AdamWStateRoundTripsExactly) {
  ANCHOR_REQUIRE_FIXTURES();
  Pretrained p = tiny_pretrained();
  p.model.set_requires_grad(true);
  torch::optim::AdamW a(p.model.parameters(), torch::optim::AdamWOptions(1e-2));
  for (int i = 0; i < 3; ++i) {
    a.zero_grad();
    at::Tensor ids = torch::tensor({{3, 4, 5, 6}}, torch::kLong);
    p.model.forward(padded_batch_inputs(ids, torch::ones_like(ids, torch::kBool))).pow(2).mean().backward();
    a.step();
  }
  const fs::path run = test::scratch_dir("ckpt_adamw");
  TrainerState s;
  s.step = 3;
  const std::string dir =
      save_training_checkpoint(run.string(), s, p, adamw_state_tensors(a, p.model.named_parameters()), 1);
  Pretrained q{load_model(dir, torch::TensorOptions().dtype(torch::kFloat)), Tokenizer::load(dir)};
  q.model.set_requires_grad(true);
  torch::optim::AdamW b(q.model.parameters(), torch::optim::AdamWOptions(1e-2));
  load_adamw_state(b, q.model.named_parameters(), SafetensorsFile((fs::path(dir) / "trainer_state.safetensors").string()));
  const auto sa = adamw_state_tensors(a, p.model.named_parameters());
  const auto sb = adamw_state_tensors(b, q.model.named_parameters());
  ASSERT_EQ(sa.size(), sb.size());
  ASSERT_FALSE(sa.empty());
  for (size_t i = 0; i < sa.size(); ++i) {
    EXPECT_EQ(sa[i].first, sb[i].first);
    EXPECT_TRUE(torch::equal(sa[i].second, sb[i].second)) << sa[i].first;
  }
}

}  // namespace
}  // namespace anchor
