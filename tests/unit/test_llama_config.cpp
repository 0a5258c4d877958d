#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/test_util.h"
#include "trainer/model/llama_config.h"

namespace anchor {
namespace {

using nlohmann::json;
using test::error_of;
using ::testing::HasSubstr;

json base_config() {
  return json{{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"vocab_size", 100},
              {"hidden_size", 32}, {"intermediate_size", 64}, {"num_hidden_layers", 2},
              {"num_attention_heads", 4}, {"num_key_value_heads", 2}, {"rms_norm_eps", 1e-5},
              {"bos_token_id", 1}, {"eos_token_id", 2}};
}

TEST(LlamaConfig, ReadsTransformers4RopeKeys) {
  json j = base_config();
  j["rope_theta"] = 500000.0;
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 4.0}};
  const LlamaConfig c = parse_llama_config(j, "config.json");
  EXPECT_EQ(c.rope.type, RopeType::linear);
  EXPECT_DOUBLE_EQ(c.rope.theta, 500000.0);
  EXPECT_DOUBLE_EQ(c.rope.factor, 4.0);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.num_query_groups(), 2);
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{2});
}

TEST(LlamaConfig, ReadsTransformers5RopeParameters) {
  json j = base_config();
  j["rope_parameters"] = {{"rope_type", "llama3"}, {"rope_theta", 10000.0}, {"factor", 8.0},
                          {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                          {"original_max_position_embeddings", 64}};
  j["eos_token_id"] = {2, 5};
  const LlamaConfig c = parse_llama_config(j, "config.json");
  EXPECT_EQ(c.rope.type, RopeType::llama3);
  EXPECT_EQ(c.rope.original_max_position_embeddings, 64);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{2, 5}));
  // Written back, it parses to the same values.
  const LlamaConfig again = parse_llama_config(llama_config_to_json(c), "again");
  EXPECT_EQ(again.rope.type, RopeType::llama3);
  EXPECT_DOUBLE_EQ(again.rope.high_freq_factor, 4.0);
  EXPECT_EQ(again.eos_token_ids, c.eos_token_ids);
}

TEST(LlamaConfig, Qwen2HasQkvBiasOnly) {
  json j = base_config();
  j["model_type"] = "qwen2";
  j["architectures"] = {"Qwen2ForCausalLM"};
  const LlamaConfig c = parse_llama_config(j, "config.json");
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_FALSE(c.o_proj_bias);
}

TEST(LlamaConfig, ErrorsNameFileAndKey) {
  json j = base_config();
  j["architectures"] = {"GPT2LMHeadModel"};
  EXPECT_THAT(error_of([&] { parse_llama_config(j, "m/config.json"); }),
              HasSubstr("m/config.json: unsupported architecture 'GPT2LMHeadModel'"));
  j = base_config();
  j["model_type"] = "gpt2";
  EXPECT_THAT(error_of([&] { parse_llama_config(j, "c.json"); }), HasSubstr("model_type='gpt2'"));
  j = base_config();
  j.erase("hidden_size");
  EXPECT_THAT(error_of([&] { parse_llama_config(j, "c.json"); }), HasSubstr("missing required key 'hidden_size'"));
  j = base_config();
  j["num_key_value_heads"] = 3;
  EXPECT_THAT(error_of([&] { parse_llama_config(j, "c.json"); }), HasSubstr("multiple of num_key_value_heads"));
  j = base_config();
  j["hidden_size"] = "big";
  EXPECT_THAT(error_of([&] { parse_llama_config(j, "c.json"); }), HasSubstr("'hidden_size' has the wrong type"));
  // Found by tests/fuzz/fuzz_model_config: a float for an integer key was a static_cast
  // (2.5 -> 2; 1e72 undefined behaviour). Integral floats are accepted.
  j = base_config();
  j["hidden_size"] = 1e72;
  EXPECT_THAT(error_of([&] { parse_llama_config(j, "c.json"); }), HasSubstr("'hidden_size' has the wrong type"));
  j["hidden_size"] = 64.5;
  EXPECT_THAT(error_of([&] { parse_llama_config(j, "c.json"); }), HasSubstr("'hidden_size' has the wrong type"));
  j = base_config();
  j["hidden_size"] = static_cast<double>(base_config()["hidden_size"].get<int64_t>());
  EXPECT_EQ(parse_llama_config(j, "c.json").hidden_size, base_config()["hidden_size"].get<int64_t>());
  j = base_config();
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 2.0}};
  EXPECT_THAT(error_of([&] { parse_llama_config(j, "c.json"); }), HasSubstr("unsupported rope_scaling.rope_type 'yarn'"));
  j = base_config();
  j["hidden_act"] = "gelu";
  EXPECT_THAT(error_of([&] { parse_llama_config(j, "c.json"); }), HasSubstr("unsupported hidden_act"));
  j = base_config();
  j["layer_types"] = {"full_attention", "sliding_attention"};
  EXPECT_THAT(error_of([&] { parse_llama_config(j, "c.json"); }), HasSubstr("sliding_attention"));
}

}  // namespace
}  // namespace anchor
