// LoRA: anchor-rl's adapters against Hugging Face PEFT (fixtures from make_peft_fixtures.py),
// hand-checked properties (a fresh adapter changes nothing, switched off = the base model,
// merged = applied), the adapter directory's files and its errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "tests/unit/test_util.h"
#include "trainer/common/file_util.h"
#include "trainer/config/train_config.h"
#include "trainer/model/pretrained.h"
#include "trainer/model/safetensors.h"

namespace anchor {
namespace {

using test::error_of;
using test::fixtures_dir;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

const auto kF32 = torch::TensorOptions().dtype(torch::kFloat);

fs::path peft_dir() { return fs::path(test::test_root()) / "peft"; }

std::map<std::string, at::Tensor> peft_reference(const std::string& name) {
  SafetensorsFile file((peft_dir() / (name + ".reference.safetensors")).string());
  std::map<std::string, at::Tensor> out;
  for (const auto& [key, _] : file.entries()) out[key] = file.load(key);
  return out;
}

double max_diff_on(const at::Tensor& a, const at::Tensor& b, const at::Tensor& mask) {
  return (a - b).abs().amax(-1).masked_select(mask.to(torch::kBool)).max().item<double>();
}

// sum(logits * weights) over real tokens: the loss the PEFT fixture differentiated.
at::Tensor weighted_loss(const LlamaModel& model, const std::map<std::string, at::Tensor>& ref) {
  const at::Tensor logits = model.forward(padded_batch_inputs(ref.at("input_ids"), ref.at("attention_mask")));
  return (logits * ref.at("loss_weights") * ref.at("attention_mask").unsqueeze(-1).to(torch::kFloat)).sum();
}

LoraSettings settings(int64_t rank, double alpha, std::vector<std::string> targets, std::string init = "kaiming") {
  LoraSettings s;
  s.rank = rank;
  s.alpha = alpha;
  s.targets = parse_lora_targets(targets, "test");
  s.init = std::move(init);
  return s;
}

class PeftCase : public ::testing::TestWithParam<std::string> {};

// PEFT's adapters, loaded by anchor-rl: the same logits and the same gradients of every adapter
// tensor (A, B, and the trainable token rows) to 1e-5.
TEST_P(PeftCase, ForwardAndAdapterGradientsEqualPeft) {
  ANCHOR_REQUIRE_FIXTURES();
  const auto ref = peft_reference(GetParam());
  Pretrained p = load_pretrained((peft_dir() / GetParam()).string(), kF32);
  ASSERT_TRUE(p.model.has_lora());
  const at::Tensor loss = weighted_loss(p.model, ref);
  {
    torch::NoGradGuard no_grad;
    const at::Tensor logits = p.model.forward(padded_batch_inputs(ref.at("input_ids"), ref.at("attention_mask")));
    EXPECT_LT(max_diff_on(logits, ref.at("logits"), ref.at("attention_mask")), 1e-5);
  }
  loss.backward();
  int64_t compared = 0;
  for (const auto& [name, t] : p.model.adapter_parameters()) {
    ASSERT_TRUE(ref.count("grad." + name)) << name << " has no PEFT gradient";
    ASSERT_TRUE(t.grad().defined()) << name;
    const at::Tensor want = ref.at("grad." + name);
    const double scale = std::max(1.0, want.abs().max().item<double>());
    EXPECT_LT((t.grad() - want).abs().max().item<double>() / scale, 1e-5) << name;
    ++compared;
  }
  int64_t references = 0;
  for (const auto& [key, _] : ref) references += key.rfind("grad.", 0) == 0;
  EXPECT_EQ(compared, references);
  // Only the adapters train: the base has no gradient.
  for (const auto& [name, t] : p.model.named_parameters()) EXPECT_FALSE(t.requires_grad()) << name;
}

INSTANTIATE_TEST_SUITE_P(Peft, PeftCase,
                         ::testing::Values("llama_gqa_tied_all_linear", "qwen3_tiny_qv_down", "llama3_rope_untied_attn"));

TEST(Lora, AdaptersOffIsTheBaseModelAndMergedEqualsApplied) {
  ANCHOR_REQUIRE_FIXTURES();
  const auto ref = peft_reference("llama_gqa_tied_all_linear");
  Pretrained adapted = load_pretrained((peft_dir() / "llama_gqa_tied_all_linear").string(), kF32);
  const LlamaModel base = load_model((fs::path(fixtures_dir()) / "llama_gqa_tied").string(), kF32);
  torch::NoGradGuard no_grad;
  const ForwardInputs in = padded_batch_inputs(ref.at("input_ids"), ref.at("attention_mask"));
  const at::Tensor with = adapted.model.forward(in);
  {
    const AdaptersDisabled off(adapted.model);
    EXPECT_TRUE(torch::equal(adapted.model.forward(in), base.forward(in)));  // the KL reference
  }
  EXPECT_TRUE(torch::equal(adapted.model.forward(in), with));  // switched back on
  EXPECT_GT((with - base.forward(in)).abs().max().item<double>(), 1e-2);  // the adapters do something
  // The prepacked decode weights: a merged copy, or the base with the adapters added beside the
  // packed GEMMs: the same logits either way.
  for (bool merge : {true, false})
    if (const auto packed = adapted.model.pack_for_decode(3, merge)) {
      EXPECT_EQ(packed->adapters_merged, merge);
      ForwardInputs packed_in = in;
      packed_in.packed = packed.get();
      EXPECT_LT(max_diff_on(adapted.model.forward(packed_in), with, ref.at("attention_mask")), 1e-4) << merge;
    }
  adapted.model.merge_adapters();
  EXPECT_FALSE(adapted.model.has_lora());
  EXPECT_LT(max_diff_on(adapted.model.forward(in), with, ref.at("attention_mask")), 1e-5);
}

TEST(Lora, FreshAdaptersLeaveTheModelUnchangedAndFollowPeftInit) {
  ANCHOR_REQUIRE_FIXTURES();
  const auto ref = peft_reference("llama_gqa_tied_all_linear");
  Pretrained p = load_pretrained((fs::path(fixtures_dir()) / "llama_gqa_tied").string(), kF32);
  torch::NoGradGuard no_grad;
  const ForwardInputs in = padded_batch_inputs(ref.at("input_ids"), ref.at("attention_mask"));
  const at::Tensor before = p.model.forward(in);
  add_adapters(p, settings(8, 16, {"all-linear"}), 7);
  EXPECT_TRUE(torch::equal(p.model.forward(in), before));  // B = 0
  const int64_t hidden = p.model.config().hidden_size, inter = p.model.config().intermediate_size;
  int64_t tensors = 0;
  for (const auto& [name, t] : p.model.adapter_parameters()) {
    ++tensors;
    EXPECT_TRUE(t.requires_grad()) << name;
    if (name.find("lora_B") != std::string::npos) {
      EXPECT_EQ(t.abs().max().item<double>(), 0.0) << name;
      continue;
    }
    // kaiming_uniform_(a = sqrt(5)): U(-1/sqrt(in), 1/sqrt(in)), in = the layer's input width.
    const int64_t in_features = name.find("down_proj") != std::string::npos ? inter
                                : name.find("o_proj") != std::string::npos
                                    ? p.model.config().num_attention_heads * p.model.config().head_dim
                                    : hidden;
    EXPECT_EQ(t.size(1), in_features) << name;
    const double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
    EXPECT_LE(t.abs().max().item<double>(), bound) << name;
    EXPECT_GT(t.abs().max().item<double>(), 0.8 * bound) << name;  // 8 x in draws reach near the bound
  }
  EXPECT_EQ(tensors, 2 * 7 * p.model.config().num_hidden_layers);
  // Gaussian: A ~ N(0, 1/r).
  Pretrained g = load_pretrained((fs::path(fixtures_dir()) / "llama_gqa_tied").string(), kF32);
  add_adapters(g, settings(4, 4, {"gate_proj"}, "gaussian"), 7);
  std::vector<at::Tensor> a;
  for (const auto& [name, t] : g.model.adapter_parameters())
    if (name.find("lora_A") != std::string::npos) a.push_back(t.flatten());
  EXPECT_NEAR(torch::cat(a).std().item<double>(), 0.25, 0.03);
}

TEST(Lora, ActivationCheckpointingGivesTheSameAdapterGradients) {
  ANCHOR_REQUIRE_FIXTURES();
  const auto ref = peft_reference("qwen3_tiny_qv_down");
  auto grads = [&](bool checkpointing) {
    Pretrained p = load_pretrained((peft_dir() / "qwen3_tiny_qv_down").string(), kF32);
    p.model.set_activation_checkpointing(checkpointing);
    weighted_loss(p.model, ref).backward();
    std::vector<at::Tensor> out;
    for (const auto& [_, t] : p.model.adapter_parameters()) out.push_back(t.grad().clone());
    return out;
  };
  const auto plain = grads(false), recomputed = grads(true);
  ASSERT_EQ(plain.size(), recomputed.size());
  for (size_t i = 0; i < plain.size(); ++i) EXPECT_TRUE(torch::allclose(plain[i], recomputed[i], 1e-5, 1e-6)) << i;
}

// The GPU layout on this CPU: a bf16 base under bf16 autocast with fp32 adapters. The adapters
// and their gradients stay fp32, the base gets none, and the loss tracks the fp32 model's.
TEST(Lora, Bf16BaseKeepsFp32AdaptersAndGradients) {
  ANCHOR_REQUIRE_FIXTURES();
  const auto ref = peft_reference("qwen3_tiny_qv_down");
  Pretrained full = load_pretrained((peft_dir() / "qwen3_tiny_qv_down").string(), kF32);
  Pretrained half = load_pretrained((peft_dir() / "qwen3_tiny_qv_down").string(), kF32);
  half.model.set_base_dtype(at::kBFloat16);
  half.model.set_compute_dtype(at::kBFloat16);
  for (const auto& [name, t] : half.model.named_parameters()) EXPECT_EQ(t.scalar_type(), at::kBFloat16) << name;
  const at::Tensor loss32 = weighted_loss(full.model, ref), loss16 = weighted_loss(half.model, ref);
  loss32.backward();
  loss16.backward();
  EXPECT_NEAR(loss16.item<double>(), loss32.item<double>(), 0.05 * std::abs(loss32.item<double>()) + 0.5);
  const auto a = full.model.adapter_parameters(), b = half.model.adapter_parameters();
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(b[i].second.scalar_type(), at::kFloat) << b[i].first;
    ASSERT_TRUE(b[i].second.grad().defined()) << b[i].first;
    EXPECT_EQ(b[i].second.grad().scalar_type(), at::kFloat) << b[i].first;
    const double cosine = torch::cosine_similarity(a[i].second.grad().flatten(), b[i].second.grad().flatten(), 0)
                              .item<double>();
    EXPECT_GT(cosine, 0.95) << b[i].first;
  }
  for (const auto& [name, t] : half.model.named_parameters()) EXPECT_FALSE(t.grad().defined()) << name;
}

// Saved adapters load back bit for bit; the files are PEFT's (checked by Python PEFT in
// check_peft_loads_anchor_adapter.py, which reads what this test leaves in scratch/).
TEST(Lora, SavedAdapterDirectoryReloadsExactlyAndHoldsPeftFiles) {
  ANCHOR_REQUIRE_FIXTURES();
  const auto ref = peft_reference("llama_gqa_tied_all_linear");
  Pretrained p = load_pretrained((fs::path(fixtures_dir()) / "llama_gqa_tied").string(), kF32);
  add_adapters(p, settings(4, 12, {"q_proj", "up_proj", "down_proj"}), 3);
  // A new special token past the vocabulary (as SFT adds them), trained as a token row.
  const int64_t old_vocab = p.model.config().vocab_size;
  const int64_t id = p.tokenizer.add_special_token("<|good|>");
  p.model.init_token_rows({id}, p.tokenizer.vocab_size() - 1, 1e-3, 0);
  p.model.train_token_rows({id});
  ASSERT_GT(p.model.config().vocab_size, old_vocab - 1);
  {
    torch::NoGradGuard no_grad;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
    for (auto& [_, t] : p.model.adapter_parameters()) t.copy_(at::normal(0.0, 0.2, t.sizes(), gen, kF32));
  }
  const fs::path dir = test::scratch_dir("anchor_lora_adapter");
  save_pretrained(p, dir.string());
  for (const char* file : {kAdapterConfigFile, kAdapterWeightsFile, kAdapterBaseFile})
    EXPECT_TRUE(fs::exists(dir / file)) << file;
  EXPECT_FALSE(fs::exists(dir / "config.json"));  // adapters only: no copy of the base
  const nlohmann::json config = read_json_file((dir / kAdapterConfigFile).string());
  EXPECT_EQ(config["peft_type"], "LORA");
  EXPECT_EQ(config["r"], 4);
  EXPECT_EQ(config["lora_alpha"], 12.0);
  EXPECT_EQ(config["target_modules"], nlohmann::json({"q_proj", "up_proj", "down_proj"}));
  EXPECT_EQ(config["trainable_token_indices"], nlohmann::json({id}));  // tied: the embedding's list
  SafetensorsFile weights((dir / kAdapterWeightsFile).string());
  EXPECT_TRUE(weights.contains("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"));
  EXPECT_TRUE(weights.contains("base_model.model.model.layers.2.mlp.down_proj.lora_B.weight"));
  EXPECT_TRUE(weights.contains(kEmbedTokenRowsName));

  Pretrained back = load_pretrained(dir.string(), kF32);
  ASSERT_TRUE(back.model.has_lora());
  EXPECT_EQ(back.base_dir, fs::absolute(fs::path(fixtures_dir()) / "llama_gqa_tied").lexically_normal().string());
  const auto a = p.model.adapter_parameters(), b = back.model.adapter_parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
  }
  torch::NoGradGuard no_grad;
  at::Tensor ids = ref.at("input_ids").clone();
  ids[0][8] = id;  // the trained token row is read
  const at::Tensor mask = ref.at("attention_mask");
  const at::Tensor logits = p.model.forward(padded_batch_inputs(ids, mask));
  EXPECT_TRUE(torch::equal(back.model.forward(padded_batch_inputs(ids, mask)), logits));
  write_safetensors((dir / "anchor_logits.safetensors").string(),
                    {{"input_ids", ids}, {"attention_mask", mask}, {"logits", logits}});
}

TEST(Lora, ErrorsNameTheKeyOrFile) {
  ANCHOR_REQUIRE_FIXTURES();
  // Config: rank, targets, dropout with checkpointing.
  auto config_error = [](std::vector<std::string> sets) {
    sets.push_back("model.lora.enabled=true");
    return error_of([&] { load_train_config(std::string(ANCHOR_SOURCE_DIR_FOR_TESTS) + "configs/demo.yaml", sets); });
  };
  EXPECT_THAT(config_error({"model.lora.rank=0"}), HasSubstr("model.lora.rank: must be >= 1, got 0"));
  EXPECT_THAT(config_error({"model.lora.rank=-2"}), HasSubstr("model.lora.rank: must be >= 1"));
  EXPECT_THAT(config_error({"model.lora.target_modules=[q_proj, qkv_proj]"}),
              HasSubstr("model.lora.target_modules[1]: 'qkv_proj' is not a linear layer"));
  EXPECT_THAT(config_error({"model.lora.dropout=0.1", "model.activation_checkpointing=true"}),
              HasSubstr("model.lora.dropout: must be 0 with model.activation_checkpointing"));
  EXPECT_EQ(config_error({"model.lora.rank=8", "model.lora.target_modules=[q_proj, v_proj]"}), "");

  // An adapter whose base model changed: the fingerprint says so.
  const fs::path base = test::copy_fixture("llama_gqa_tied", "lora_base_copy");
  Pretrained p = load_pretrained(base.string(), kF32);
  add_adapters(p, settings(2, 4, {"v_proj"}), 1);
  const fs::path dir = test::scratch_dir("lora_adapter_of_copy");
  save_pretrained(p, dir.string());
  EXPECT_EQ(error_of([&] { load_pretrained(dir.string(), kF32); }), "");
  {
    nlohmann::json config = read_json_file((base / "config.json").string());
    config["rms_norm_eps"] = 1e-3;
    std::ofstream((base / "config.json").string()) << config.dump(2);
  }
  EXPECT_THAT(error_of([&] { load_pretrained(dir.string(), kF32); }),
              ::testing::AllOf(HasSubstr("anchor_base_model.json"), HasSubstr("has fingerprint"),
                               HasSubstr("do not belong to this base model")));
  fs::remove_all(base);
  EXPECT_THAT(error_of([&] { load_pretrained(dir.string(), kF32); }), HasSubstr("does not exist"));

  // PEFT files: an unsupported option, a rank the weights do not have, a foreign tensor.
  const fs::path peft = test::scratch_dir("lora_bad_peft");
  fs::copy(peft_dir() / "qwen3_tiny_qv_down", peft, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  const nlohmann::json good = read_json_file((peft / kAdapterConfigFile).string());
  auto with = [&](const char* key, nlohmann::json value) {
    nlohmann::json j = good;
    j[key] = std::move(value);
    std::ofstream((peft / kAdapterConfigFile).string()) << j.dump(2);
    return error_of([&] { load_pretrained(peft.string(), kF32); });
  };
  EXPECT_THAT(with("use_dora", true), HasSubstr("adapter_config.json: use_dora = true is not supported"));
  EXPECT_THAT(with("r", 0), HasSubstr("adapter_config.json: r must be an integer >= 1"));
  EXPECT_THAT(with("r", 5), ::testing::AllOf(HasSubstr("adapter_model.safetensors: tensor"), HasSubstr("has shape")));
  EXPECT_THAT(with("target_modules", nlohmann::json({"q_proj", "v_proj"})),
              HasSubstr("unexpected tensor 'base_model.model.model.layers.0.mlp.down_proj.lora_A.weight'"));
  EXPECT_THAT(with("target_modules", nlohmann::json({"c_attn"})), HasSubstr("'c_attn' is not a linear layer"));
}

}  // namespace
}  // namespace anchor
