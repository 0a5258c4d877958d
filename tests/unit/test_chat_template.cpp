// Chat templates: anchor-rl's renderer against transformers' Jinja rendering of the templates in
// tests/fixtures/chat_templates, presets by hand, and conversations from JSONL.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "data/chat_template.h"
#include "data/prompt_dataset.h"
#include "tests/unit/test_util.h"
#include "trainer/common/file_util.h"
#include "trainer/model/tokenizer.h"

namespace anchor {
namespace {

namespace fs = std::filesystem;
using data::ChatMessage;
using data::ChatTemplate;
using nlohmann::json;
using test::error_of;
using ::testing::HasSubstr;

std::string template_file(const std::string& name) {
  return std::string(ANCHOR_SOURCE_DIR_FOR_TESTS) + "tests/fixtures/chat_templates/" + name + ".jinja";
}

TEST(ChatTemplate, RendersLikeTransformersJinja) {
  ANCHOR_REQUIRE_FIXTURES();
  std::ifstream in(test::test_root() + "/chat_templates.reference.json");
  ASSERT_TRUE(in.good());
  const json ref = json::parse(in);
  std::set<std::string> seen;
  const Tokenizer smollm2 = Tokenizer::load(test::smollm2_dir());
  for (const auto& row : ref) {
    const std::string name = row["template"];
    if (name == "mistral") continue;
    seen.insert(name);
    const ChatTemplate chat("auto", "data.template", read_text_file(template_file(name)), template_file(name),
                            "<|begin_of_text|>");
    std::vector<ChatMessage> messages;
    for (const auto& m : row["messages"]) messages.push_back({m["role"], m["content"]});
    EXPECT_EQ(chat.render(messages, row["add_generation_prompt"]), row["text"].get<std::string>())
        << name << " " << row["messages"].dump();
    EXPECT_FALSE(chat.encode_with_special_tokens());
    if (row.contains("ids"))  // the model's own template: ids as apply_chat_template(tokenize=True)
      EXPECT_EQ(smollm2.encode(row["text"], chat.encode_with_special_tokens()), row["ids"].get<std::vector<int64_t>>());
  }
  EXPECT_EQ(seen, (std::set<std::string>{"llama3", "llama3_1", "qwen2_5", "qwen3", "smollm2"}));
}

TEST(ChatTemplate, RecognisesFamiliesAndRefusesOthers) {
  const ChatTemplate smol("auto", "data.template", read_text_file(template_file("smollm2")), "x.jinja");
  EXPECT_EQ(smol.family(), ChatTemplate::Family::chatml);
  EXPECT_THAT(smol.describe(), HasSubstr("default system prompt 'You are a helpful AI assistant named SmolLM"));
  const ChatTemplate qwen("auto", "data.template", read_text_file(template_file("qwen2_5")), "x.jinja");
  EXPECT_THAT(qwen.describe(), HasSubstr("'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.'"));
  const ChatTemplate llama("auto", "data.template", read_text_file(template_file("llama3_1")), "x.jinja",
                           "<|begin_of_text|>");
  EXPECT_THAT(llama.describe(), HasSubstr("llama3, 3.1 system header dated 26 Jul 2024"));
  EXPECT_THAT(error_of([] { ChatTemplate("auto", "data.template", read_text_file(template_file("mistral")), "m.jinja"); }),
              ::testing::AllOf(HasSubstr("m.jinja: the chat template is not one anchor-rl recognises"),
                               HasSubstr("set data.template")));
  EXPECT_THAT(error_of([] { ChatTemplate("auto", "data.template", "", "dir/tokenizer_config.json"); }),
              HasSubstr("data.template: 'auto' uses the model's chat template, but dir/tokenizer_config.json has none"));
}

TEST(ChatTemplate, PresetsAndPlainFormats) {
  const std::vector<ChatMessage> sys_user = {{"system", "S"}, {"user", "U"}};
  EXPECT_EQ(ChatTemplate("chatml", "k").render(sys_user, true),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(ChatTemplate("qwen", "k").apply("hi"),
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
  // The llama3 preset leaves <|begin_of_text|> to the tokenizer (add special tokens).
  const ChatTemplate llama("llama3", "k");
  EXPECT_TRUE(llama.encode_with_special_tokens());
  EXPECT_EQ(llama.apply(" hi \n"),
            "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(ChatTemplate("plain", "k").apply("2+2="), "2+2=");
  EXPECT_EQ(ChatTemplate("Q: {prompt}\nA:", "k").apply("2+2"), "Q: 2+2\nA:");
  EXPECT_THAT(error_of([] { ChatTemplate("Q: ...", "data.template"); }),
              HasSubstr("data.template: 'Q: ...' is neither a preset (auto, plain, chatml, llama3, qwen)"));
  EXPECT_THAT(error_of([&] { ChatTemplate("plain", "data.template").render(sys_user, true); }),
              HasSubstr("renders one user prompt, not a conversation of 2 message(s)"));
  EXPECT_THAT(error_of([] { ChatTemplate("chatml", "k").render({{"tool", "x"}}, true); }),
              HasSubstr("messages[0].role is 'tool' (expected system, user or assistant)"));
}

TEST(PromptDataset, ConversationsFromMessagesWithFileLineErrors) {
  const fs::path dir = test::scratch_dir("messages_data");
  const fs::path file = dir / "d.jsonl";
  std::ofstream(file) << R"({"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "2+2?"}], "answer": "4"})"
                      << "\n" << R"({"prompt": "plain one"})" << "\n";
  const auto ds = data::PromptDataset::load_jsonl(file.string());
  ASSERT_EQ(ds.size(), 2u);
  EXPECT_EQ(ds[0].prompt, "2+2?");
  EXPECT_EQ(ds[0].conversation().size(), 2u);
  EXPECT_EQ(ds[1].conversation()[0].content, "plain one");
  EXPECT_EQ(ChatTemplate("chatml", "k").render(ds[0].conversation(), true),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_THAT(error_of([&] { ds.check_renders_with(ChatTemplate("plain", "data.template"), "data.template"); }),
              HasSubstr(file.string() + ":1: a 'messages' conversation needs a chat template, but data.template is a plain format"));
  auto bad = [&](const std::string& line) {
    std::ofstream(file) << R"({"prompt": "ok"})" << "\n" << line << "\n";
    return error_of([&] { data::PromptDataset::load_jsonl(file.string()); });
  };
  EXPECT_THAT(bad(R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]})"),
              HasSubstr(":2: the conversation ends with a 'assistant' turn"));
  EXPECT_THAT(bad(R"({"messages": [{"role": "bot", "content": "a"}]})"), HasSubstr(":2: messages[0].role is 'bot'"));
  EXPECT_THAT(bad(R"({"messages": [{"role": "user"}]})"), HasSubstr(":2: messages[0] must be {\"role\": string"));
  EXPECT_THAT(bad(R"({"messages": []})"), HasSubstr(":2: 'messages' must be a non-empty list"));
  EXPECT_THAT(bad(R"({"other": 1})"), HasSubstr(":2: missing string field 'prompt' (or a 'messages' conversation)"));
}

}  // namespace
}  // namespace anchor
