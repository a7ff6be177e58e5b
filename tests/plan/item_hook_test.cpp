// eval's ItemHook: an evaluation that restores half its items from the records an earlier attempt
// handed out computes the same numbers as one that computes every item, for each regime it serves.
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "../test_paths.h"
#include "quantbench/eval/generation.h"
#include "quantbench/eval/multiple_choice.h"
#include "quantbench/eval/perplexity.h"
#include "quantbench/formats/gguf_reader.h"
#include "quantbench/model/model.h"
#include "quantbench/quant/quantize_model.h"
#include "quantbench/quant/scheme.h"
#include "quantbench/quant/writers/gguf_output.h"

namespace qb::eval {
namespace {

// Runs `fn` twice: once collecting every item's record, once restoring every other one of them.
template <typename Fn>
void expect_resume_is_exact(Fn&& fn) {
  std::map<std::string, nlohmann::json> all;
  ItemHook collect;
  collect.begin = [](const std::string&, const std::string&, const Manifest&, const std::string&) {
    return std::map<std::string, nlohmann::json>{};
  };
  collect.on_item = [&](const std::string& k, const nlohmann::json& r) { EXPECT_TRUE(all.emplace(k, r).second) << k; };
  const Result full = fn(&collect);
  ASSERT_GE(all.size(), 2u);

  std::map<std::string, nlohmann::json> half;
  size_t i = 0;
  for (const auto& [k, r] : all)
    if (i++ % 2 == 0) half.emplace(k, r);
  std::map<std::string, nlohmann::json> computed;
  ItemHook resume;
  resume.begin = [&](const std::string& regime, const std::string& task, const Manifest& m, const std::string&) {
    EXPECT_EQ(regime, full.regime());
    EXPECT_EQ(task, full.task());
    EXPECT_EQ(m.facts(), full.manifest().facts());
    return half;
  };
  resume.on_item = [&](const std::string& k, const nlohmann::json& r) { computed.emplace(k, r); };
  const Result again = fn(&resume);
  EXPECT_EQ(computed.size(), all.size() - half.size());  // restored items are not recomputed
  for (const auto& [k, r] : computed) EXPECT_FALSE(half.count(k)) << k;
  ASSERT_EQ(full.metrics().size(), again.metrics().size());
  for (size_t j = 0; j < full.metrics().size(); ++j)
    EXPECT_EQ(full.metrics()[j].value, again.metrics()[j].value) << full.metrics()[j].name;
  EXPECT_EQ(full.to_json()["items"], again.to_json()["items"]);
  // And no hook at all gives the same numbers too.
  const Result plain = fn(nullptr);
  for (size_t j = 0; j < full.metrics().size(); ++j)
    EXPECT_EQ(full.metrics()[j].value, plain.metrics()[j].value) << full.metrics()[j].name;
}

// A w4g32 copy of stories260K, so baseline and candidate differ.
std::string candidate_file() {
  const std::string out = ::testing::TempDir() + "qb_hook_w4g32_" + std::to_string(::getpid()) + ".gguf";
  if (std::filesystem::exists(out)) return out;
  const auto methods = quant::builtin_methods();
  auto model = model::Model::load(formats::GgufFile::open(qb::test::stories260k_path()));
  quant::QuantizeOptions qo;
  qo.progress = false;
  const auto qm = quant::quantize_model(model, quant::load_scheme("w4g32", methods), methods, qo);
  quant::write_quantized_gguf(qm, qm.manifest, out);
  return out;
}

struct EvalItemHook : ::testing::Test {
  ModelPair pair{qb::test::stories260k_path(), candidate_file()};
};

TEST_F(EvalItemHook, PerplexityRestoresWindowsExactly) {
  std::ifstream in(qb::test::source_path("data/eval/tinystories/tiny_eval_slice.txt"));
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  expect_resume_is_exact([&](const ItemHook* h) {
    PerplexityOptions o;
    o.n_ctx = 64;
    o.max_windows = 7;
    o.batch = 2;
    o.bootstrap = {40, 1, 0.95};
    o.progress = false;
    o.hook = h;
    return evaluate_perplexity(pair, {text}, "slice", "sha", o);
  });
}

TEST_F(EvalItemHook, MultipleChoiceRestoresItemsExactly) {
  const auto task = load_task("arc_easy", qb::test::source_path("data/eval"), 6);
  expect_resume_is_exact([&](const ItemHook* h) {
    McOptions o;
    o.progress = false;
    o.hook = h;
    return evaluate_multiple_choice(pair, task, o);
  });
}

TEST_F(EvalItemHook, GenerationRestoresPromptsExactly) {
  std::vector<GenPrompt> prompts;
  for (const char* t : {"Once upon a time", "Tom had a dog", "The sun was", "Lily saw a"}) {
    GenPrompt p;
    p.id = t;
    p.text = t;
    p.tokens = pair.tokenizer().encode(t, true, false);
    prompts.push_back(p);
  }
  prompts[3].id = prompts[0].id;  // a repeated id still gets its own key
  expect_resume_is_exact([&](const ItemHook* h) {
    GenerationOptions o;
    o.max_new_tokens = 12;
    o.progress = false;
    o.bootstrap = {40, 1, 0.95};
    o.hook = h;
    return evaluate_generation(pair, prompts, "generation", "t", "sha", "raw", o);
  });
}

}  // namespace
}  // namespace qb::eval
