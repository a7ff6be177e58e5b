// Chat templates against Jinja2's rendering of the published templates
// (tests/golden/chat_template/make_chat_golden.py wrote chat_golden.json), plus recognition from the
// bundled GGUF and tokenizer_config.json.
#include "quantbench/tokenizer/chat_template.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "quantbench/core/error.h"
#include "quantbench/formats/gguf_reader.h"
#include "quantbench/tokenizer/tokenizer.h"
#include "tokenizer_test_data.h"

namespace qb::tokenizer {
namespace {

TEST(ChatTemplate, MatchesJinjaGolden) {
  const auto g = nlohmann::json::parse(test::read_text_file(test::source_path("tests/golden/chat_template/chat_golden.json")));
  const std::map<std::string, std::string> expected_name = {
      {"qwen3", "chatml-qwen3"}, {"chatml-default-system", "chatml"}, {"chatml", "chatml"}, {"phi3", "phi3"},
      {"phi3-system", "phi3-system"}, {"llama3", "llama3"}, {"llama2", "llama2"}, {"mistral", "mistral"},
      {"gemma", "gemma"}, {"gemma3", "gemma3"}, {"zephyr", "zephyr"}};
  int checked = 0;
  for (const auto& c : g.at("cases")) {
    const std::string tname = c.at("template");
    const auto tmpl = ChatTemplate::recognise(g.at("templates").at(tname).get<std::string>());
    EXPECT_EQ(tmpl.name(), expected_name.at(tname));
    std::vector<ChatMessage> msgs;
    for (const auto& m : g.at("conversations").at(c.at("conversation").get<std::string>()))
      msgs.push_back({m.at("role"), m.at("content")});
    const std::string bos = g.at("special").at(tname).at("bos"), eos = g.at("special").at(tname).at("eos");
    const bool gen = c.at("add_generation_prompt");
    const std::string label = tname + "/" + c.at("conversation").get<std::string>() + (gen ? "/gen" : "");
    if (c.contains("error")) {
      EXPECT_THROW(tmpl.apply(msgs, gen, bos, eos), Error) << label;
    } else {
      EXPECT_EQ(tmpl.apply(msgs, gen, bos, eos), c.at("expected").get<std::string>()) << label;
    }
    ++checked;
  }
  EXPECT_EQ(checked, 130);
  const auto qwen25 = ChatTemplate::recognise(g.at("templates").at("chatml-default-system").get<std::string>());
  EXPECT_EQ(qwen25.default_system(), "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.");
}

TEST(ChatTemplate, RecognisesBundledTemplates) {
  const auto f = formats::GgufFile::open(test::inflated_path("data/vocab/ggml-vocab-phi-3.gguf"));
  EXPECT_EQ(ChatTemplate::from_gguf(*f).name(), "phi3");
  const auto no_template = formats::GgufFile::open(test::inflated_path("data/vocab/ggml-vocab-gpt-2.gguf"));
  EXPECT_THROW(ChatTemplate::from_gguf(*no_template), Error);

  const std::string cfg = test::read_text_file(test::source_path("data/tokenizers/qwen3/tokenizer_config.json"));
  const auto qwen = ChatTemplate::from_tokenizer_config(cfg);
  EXPECT_EQ(qwen.name(), "chatml-qwen3");
  EXPECT_EQ(qwen.family(), ChatFamily::Qwen3);
}

TEST(ChatTemplate, UnrecognisedIsAClearError) {
  try {
    ChatTemplate::recognise("{% for m in messages %}### {{ m.role }}: {{ m.content }}\n{% endfor %}");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unrecognised chat template"), std::string::npos);
  }
  EXPECT_THROW(ChatTemplate::from_tokenizer_config("{\"chat_template\": 3}"), Error);
  EXPECT_THROW(ChatTemplate::from_tokenizer_config("{broken"), Error);
}

TEST(ChatTemplate, RenderedPromptTokenizesWithSpecialTokens) {
  const auto tok = Tokenizer::from_hf_json_file(test::source_path("data/tokenizers/qwen3/tokenizer.json.gz"),
                                                test::source_path("data/tokenizers/qwen3/tokenizer_config.json"));
  const auto tmpl =
      ChatTemplate::from_tokenizer_config(test::read_text_file(test::source_path("data/tokenizers/qwen3/tokenizer_config.json")));
  const std::vector<ChatMessage> msgs = {{"user", "Hi"}};
  const std::string prompt = tmpl.apply(msgs, true, tok);
  EXPECT_EQ(prompt, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  const auto ids = tok.encode(prompt, false, true);
  ASSERT_GE(ids.size(), 6u);
  EXPECT_EQ(ids.front(), *tok.find("<|im_start|>"));
  EXPECT_EQ(tok.decode(ids), prompt);
}

}  // namespace
}  // namespace qb::tokenizer
