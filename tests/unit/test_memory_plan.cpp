// The memory plan (trainer/run/memory_plan.h): parameter counts against the model itself and
// the released Qwen3 totals, every item of a small plan by hand, the ZeRO slices, sampling
// chunks, refusals and their fixes, and the size parser.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "tests/unit/test_util.h"
#include "trainer/common/error.h"
#include "trainer/model/llama_model.h"
#include "trainer/run/memory_plan.h"
#include "trainer/run/run_memory_plan.h"

namespace anchor {
namespace {

constexpr int64_t kMiB = int64_t{1} << 20;

LlamaConfig tiny_config() {
  LlamaConfig c;
  c.vocab_size = 10;
  c.hidden_size = 8;
  c.intermediate_size = 16;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 1;
  c.head_dim = 4;
  c.tie_word_embeddings = false;
  return c;
}

int64_t item(const std::vector<MemoryItem>& items, const std::string& name) {
  for (const MemoryItem& i : items)
    if (i.name == name) return i.bytes;
  ADD_FAILURE() << "no item " << name;
  return -1;
}

const MemoryPhase& phase(const MemoryPlan& plan, const std::string& name) {
  for (const MemoryPhase& p : plan.phases)
    if (p.name == name) return p;
  throw std::runtime_error("no phase " + name);
}

MemoryPlanInputs tiny_inputs() {
  MemoryPlanInputs in;
  in.model = tiny_config();
  in.config.rollout.prompts_per_step = 2;
  in.config.rollout.samples_per_prompt = 4;
  in.config.rollout.max_new_tokens = 3;
  in.config.algo.micro_batch_size = 4;
  in.prompt_tokens = 5;
  in.runtime_bytes = 1000;
  return in;
}

TEST(MemoryPlan, ParameterCountIsTheModels) {
  for (int variant = 0; variant < 5; ++variant) {
    LlamaConfig c = tiny_config();
    c.tie_word_embeddings = variant == 1;
    c.qkv_bias = variant == 2;
    c.o_proj_bias = variant == 2;
    c.qk_norm = variant == 3;
    c.mlp_bias = variant == 4;
    EXPECT_EQ(count_parameters(c), LlamaModel(c, torch::TensorOptions().dtype(torch::kFloat)).num_parameters())
        << "variant " << variant;
  }
  EXPECT_EQ(count_parameters(tiny_config()), 1352);  // 80 + 80 + 8 + 2 x 592, by hand
  // The released Qwen3 totals (Hugging Face model cards: 0.6B, 1.7B, 4.0B, 8.2B).
  const std::string shapes = std::string(ANCHOR_SOURCE_DIR_FOR_TESTS) + "configs/model_shapes/";
  EXPECT_EQ(count_parameters(read_llama_config(shapes + "qwen3-0.6b/config.json")), 596049920);
  EXPECT_EQ(count_parameters(read_llama_config(shapes + "qwen3-1.7b/config.json")), 1720574976);
  EXPECT_EQ(count_parameters(read_llama_config(shapes + "qwen3-4b/config.json")), 4022468096);
  EXPECT_EQ(count_parameters(read_llama_config(shapes + "qwen3-8b/config.json")), 8190735360);
}

// Every item of the tiny plan, counted by hand (fp32, CPU, one rank, ZeRO 0): 1352 parameters,
// rollout 2 prompts x 4 samples, micro-batch 4 = one group: 5 prompt + 4 x 3 response positions.
TEST(MemoryPlan, TinyPlanByHand) {
  const MemoryPlan plan = plan_memory(tiny_inputs());
  EXPECT_EQ(item(plan.resident, "weights (fp32)"), 4 * 1352);
  EXPECT_EQ(item(plan.resident, "gradients (fp32)"), 4 * 1352);
  EXPECT_EQ(item(plan.resident, "AdamW moments (fp32)"), 8 * 1352);
  EXPECT_EQ(item(plan.resident, "runtime"), 1000);
  EXPECT_EQ(item(plan.resident, "kernels and caches"), 150 * kMiB);
  EXPECT_EQ(plan.resident_total(), 16 * 1352 + 1000 + 150 * kMiB);
  // Per position and layer: 4h + 3q + 2kv + 4I = 128 floats + rstd x2 + 2 heads' lse = 528 B.
  const MemoryPhase& update = phase(plan, "update");
  EXPECT_EQ(item(update.items, "activations of one micro-batch"), 2 * 528 * 17);
  EXPECT_EQ(item(update.items, "keys / values with the shared prompt"), 2 * 2 * 4 * 8 * 4 * 4);
  // Float attention masks: 4 rows x 3 queries x 8 keys + the prompt's 5 x 5, per layer.
  EXPECT_EQ(item(update.items, "attention masks (float, one per layer)"), 2 * (4 * 3 * 8 + 5 * 5) * 4);
  EXPECT_EQ(item(update.items, "CPU allocator overhead"), (2 * 528 * 17 + 2048 + 968) / 5);
  EXPECT_EQ(item(update.items, "backward: one layer's activation gradients"), 528 * 17);
  EXPECT_EQ(item(update.items, "log-prob chunks"), 48 * kMiB);
  // Rollout: 8 rows x 8 tokens x (2 layers x k,v x 4 floats); logits buffers 10 x 20 B per row;
  // prefill 5 positions x (3I + 3h + q + 2kv) floats per distinct prompt; packed weights.
  EXPECT_EQ(plan.rollout_rows, 8);
  EXPECT_EQ(plan.rollout_chunk_rows, 8);
  const MemoryPhase& rollout = phase(plan, "rollout");
  EXPECT_EQ(item(rollout.items, "KV cache"), 8 * 8 * 64);
  EXPECT_EQ(item(rollout.items, "decode buffers"), 8 * 200);
  EXPECT_EQ(item(rollout.items, "prefill intermediates"), 2 * 5 * 88 * 4);
  EXPECT_EQ(item(rollout.items, "packed decode weights"), 4 * 1352);
  EXPECT_EQ(plan.peak_phase().name, "update");
  EXPECT_EQ(plan.peak(), plan.resident_total() + update.total());
  EXPECT_TRUE(plan.fits());  // device unknown: nothing refused

  // Activation checkpointing keeps each layer's input and recomputes one layer.
  MemoryPlanInputs ckpt = tiny_inputs();
  ckpt.config.model.activation_checkpointing = true;
  const MemoryPlan checkpointed = plan_memory(ckpt);
  const MemoryPhase& u2 = phase(checkpointed, "update");
  EXPECT_EQ(item(u2.items, "layer inputs (activation checkpointing)"), 2 * 17 * 8 * 4);
  EXPECT_EQ(item(u2.items, "one layer recomputed in backward"), 528 * 17);

  // bf16 compute (CUDA, dtype auto): activations in 2 bytes, the norms' fp32 copies, an autocast
  // copy of the weights, no packed decode weights.
  MemoryPlanInputs gpu = tiny_inputs();
  gpu.cuda = true;
  const MemoryPlan bf16 = plan_memory(gpu);
  EXPECT_EQ(item(phase(bf16, "update").items, "activations of one micro-batch"), 2 * (128 * 2 + 16 + 12 * 8) * 17);
  EXPECT_EQ(item(phase(bf16, "update").items, "bf16 copy of the weights (autocast)"), 2 * 1352);
  for (const MemoryItem& i : phase(bf16, "rollout").items) EXPECT_NE(i.name, "packed decode weights");
}

TEST(MemoryPlan, ZeroStagesShardTheOptimizer) {
  MemoryPlanInputs in = tiny_inputs();
  in.world_size = 3;
  in.config.rollout.prompts_per_step = 3;
  in.config.distributed.zero_stage = 1;
  const MemoryPlan one = plan_memory(in);
  const int64_t slice = 451;  // ceil(1352 / 3)
  EXPECT_EQ(item(one.resident, "gradients (fp32)"), 4 * 1352);
  EXPECT_EQ(item(one.resident, "gradient sum, this rank's slice"), 4 * slice);
  EXPECT_EQ(item(one.resident, "AdamW moments, this rank's slice"), 8 * slice);
  EXPECT_EQ(item(one.resident, "master weights, this rank's slice"), 4 * slice);
  EXPECT_EQ(one.rollout_rows, 4);  // one prompt of 3 per rank, 4 samples
  in.config.distributed.zero_stage = 2;
  const MemoryPlan two = plan_memory(in);
  for (const MemoryItem& i : two.resident) EXPECT_NE(i.name, "gradients (fp32)");
  EXPECT_EQ(item(phase(two, "update").items, "gradients of the micro-batch in flight"), 4 * 1352);
  EXPECT_EQ(item(phase(two, "update").items, "gradient bucket"), 4 * 1352);  // smaller than 64 MB
}

// LoRA: rank x (in + out) per target layer, by hand; the optimizer's items count the adapters,
// the base is frozen in the compute dtype and the KL reference is the base itself.
TEST(MemoryPlan, LoraCountsAdaptersOnly) {
  LoraSettings lora;
  lora.rank = 2;
  lora.targets = parse_lora_targets({"all-linear"}, "test");
  // q 8+8, k and v 8+4 each, o 8+8, gate / up / down 8+16 each = 128 per layer and rank unit.
  EXPECT_EQ(count_lora_parameters(tiny_config(), lora), 2 * 2 * 128);
  LlamaModel model(tiny_config(), torch::TensorOptions().dtype(torch::kFloat));
  model.add_lora(lora, 0);
  int64_t elements = 0;
  for (const auto& [_, t] : model.adapter_parameters()) elements += t.numel();
  EXPECT_EQ(elements, 512);
  // SmolLM2-135M's config.json, rank 16, all-linear: 16 x 30 x (1152 + 2 x 768 + 1152 + 3 x 2112).
  lora.rank = 16;
  EXPECT_EQ(count_lora_parameters(read_llama_config(test::smollm2_dir() + "/config.json"), lora), 4884480);

  MemoryPlanInputs in = tiny_inputs();
  in.config.model.lora.enabled = true;
  in.config.model.lora.rank = 2;
  in.config.algo.kl_coef = 0.1;
  const MemoryPlan plan = plan_memory(in);
  EXPECT_EQ(item(plan.resident, "frozen base weights (fp32)"), 4 * 1352);
  EXPECT_EQ(item(plan.resident, "LoRA adapters (fp32)"), 4 * 512);
  EXPECT_EQ(item(plan.resident, "gradients (fp32)"), 4 * 512);
  EXPECT_EQ(item(plan.resident, "AdamW moments (fp32)"), 8 * 512);
  for (const MemoryItem& i : plan.resident) EXPECT_NE(i.name, "KL reference model (fp32)");
  in.cuda = true;  // bf16 compute: the base is stored in bf16, so autocast copies nothing
  const MemoryPlan bf16 = plan_memory(in);
  EXPECT_EQ(item(bf16.resident, "frozen base weights (bf16)"), 2 * 1352);
  for (const MemoryItem& i : phase(bf16, "update").items) EXPECT_NE(i.name, "bf16 copy of the weights (autocast)");
}

// A rollout whose rows do not fit samples in chunks of whole groups; evaluation chunks never
// need more than the step's largest phase.
TEST(MemoryPlan, SamplingChunksFitTheDevice) {
  MemoryPlanInputs in = tiny_inputs();
  in.config.rollout.prompts_per_step = 64;  // 256 rows
  in.config.data.eval = "eval.jsonl";
  const int64_t per_row = 8 * 64 + 200 + 5 * 88 * 4;
  const MemoryPlan free_plan = plan_memory(in);
  EXPECT_EQ(free_plan.rollout_chunk_rows, 256);
  EXPECT_GE(free_plan.eval_chunk_rows, 1);
  EXPECT_LE(free_plan.eval_chunk_rows, 256);
  // A device with room for the resident items, the fixed sampling buffers and 50 rows.
  in.device_bytes = free_plan.resident_total() + 4 * 1352 + 50 * per_row;
  const MemoryPlan tight = plan_memory(in);
  EXPECT_EQ(tight.rollout_chunk_rows, 48);  // 50 rows fit, rounded down to whole groups of 4
  EXPECT_LE(tight.eval_chunk_rows, 50);
}

TEST(MemoryPlan, RefusalNamesTheLargestItemAndFixesThatFit) {
  MemoryPlanInputs in;
  in.model = read_llama_config(std::string(ANCHOR_SOURCE_DIR_FOR_TESTS) + "configs/model_shapes/qwen3-8b/config.json");
  in.cuda = true;
  in.world_size = 8;
  in.prompt_tokens = 512;
  in.config.rollout.prompts_per_step = 128;
  in.config.rollout.samples_per_prompt = 8;
  in.config.rollout.max_new_tokens = 1024;
  in.config.algo.mini_batches = 4;
  in.config.algo.micro_batch_size = 8;
  in.config.model.activation_checkpointing = true;
  in.device_bytes = 141000000000;
  in.device_name = "test GPU";
  const MemoryPlan plan = plan_memory(in);
  ASSERT_FALSE(plan.fits());
  EXPECT_EQ(plan.largest_item().name, "AdamW moments (fp32)");  // 8 B per parameter
  const std::string msg = memory_plan_refusal(in, plan);
  EXPECT_NE(msg.find("AdamW moments (fp32)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("test GPU"), std::string::npos) << msg;
  EXPECT_NE(msg.find("distributed.zero_stage=1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("distributed.zero_stage=2"), std::string::npos) << msg;
  // The fixes it names fit when applied.
  MemoryPlanInputs fixed = in;
  fixed.config.distributed.zero_stage = 1;
  EXPECT_TRUE(plan_memory(fixed).fits());
  // On an 80 GiB GPU only LoRA makes it fit (the bf16 base and the adapters' few MB of state).
  in.device_bytes = int64_t{80} << 30;
  const std::string lora = memory_plan_refusal(in, plan_memory(in));
  EXPECT_NE(lora.find("It fits with any one of: model.lora.enabled=true (rank 16, all-linear) (peak"),
            std::string::npos) << lora;
  EXPECT_EQ(lora.find("distributed.zero_stage=1 (peak"), std::string::npos) << lora;
  MemoryPlanInputs with_lora = in;
  with_lora.config.model.lora.enabled = true;
  EXPECT_TRUE(plan_memory(with_lora).fits());
  // Nothing fits on 8 GiB: the message names what remains at the most frugal setting.
  in.device_bytes = int64_t{8} << 30;
  const std::string none = memory_plan_refusal(in, plan_memory(in));
  EXPECT_NE(none.find("No setting of ZeRO stage, activation checkpointing, LoRA or micro-batch"), std::string::npos)
      << none;
  EXPECT_NE(none.find("frozen base weights (bf16)"), std::string::npos) << none;
  EXPECT_EQ(memory_plan_refusal(fixed, plan_memory(fixed)), "");
}

// `anchor-rl plan` and the start of a run: a model directory with only config.json is enough
// when the prompt length is given; otherwise the error names what to set.
TEST(MemoryPlan, RunInputsFromConfigJsonAlone) {
  TrainConfig cfg;
  cfg.data.train = "missing.jsonl";
  const std::string dir = std::string(ANCHOR_SOURCE_DIR_FOR_TESTS) + "configs/model_shapes/qwen3-4b";
  PlanRequest request;
  request.device_memory = "141GB";
  try {
    run_memory_plan_inputs(cfg, ConfigUse::rl, dir, request);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("data.max_prompt_tokens or pass --prompt-tokens"), std::string::npos) << e.what();
  }
  cfg.data.max_prompt_tokens = 300;
  const MemoryPlanInputs in = run_memory_plan_inputs(cfg, ConfigUse::rl, dir, request);
  EXPECT_EQ(in.prompt_tokens, 300);
  EXPECT_EQ(in.device_bytes, 141000000000);
  EXPECT_EQ(in.model.num_hidden_layers, 36);
  EXPECT_THROW(run_memory_plan_inputs(cfg, ConfigUse::rl, "/nonexistent", request), Error);
}

TEST(MemoryPlan, ByteSizes) {
  EXPECT_EQ(parse_byte_size("80GiB", "x"), int64_t{80} << 30);
  EXPECT_EQ(parse_byte_size("141 GB", "x"), 141000000000);
  EXPECT_EQ(parse_byte_size("512MiB", "x"), int64_t{512} << 20);
  EXPECT_EQ(parse_byte_size("1.5gib", "x"), int64_t{3} << 29);
  EXPECT_EQ(parse_byte_size("4096", "x"), 4096);
  for (const char* bad : {"", "GiB", "80 parsecs", "-1GB", "0GB", "1e3GB"}) {
    try {
      parse_byte_size(bad, "--device-memory");
      ADD_FAILURE() << bad;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("--device-memory"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(format_bytes(int64_t{3} << 29), "1.50 GiB");
  EXPECT_EQ(format_bytes(5 * kMiB), "5.0 MiB");
}

}  // namespace
}  // namespace anchor
