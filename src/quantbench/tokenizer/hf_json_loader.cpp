// Loads a byte-level BPE Tokenizer from a Hugging Face tokenizer.json (and, optionally, the special-token
// settings of tokenizer_config.json). Only the pieces a byte-level BPE model uses are accepted; anything
// else (another model type, a pre-tokenizer we cannot express as regex splits) is a clear error rather
// than a silently different tokenization. What cannot be honoured exactly (an NFC normalizer) is written
// into notes() for the Manifest.
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "quantbench/core/error.h"
#include "quantbench/core/read_file.h"
#include "quantbench/tokenizer/tokenizer.h"

namespace qb::tokenizer {

namespace {

using nlohmann::json;

constexpr const char* kGpt2Regex = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

std::string quote_literal(const std::string& s) {  // a Split with a String pattern matches it literally
  std::string r = "\\Q";
  for (size_t i = 0; i < s.size(); ++i) {
    if (s.compare(i, 2, "\\E") == 0) {
      r += "\\E\\\\E\\Q";
      ++i;
    } else {
      r += s[i];
    }
  }
  return r + "\\E";
}

void add_pre_tokenizer(const json& p, VocabSpec& s, std::string& desc) {
  const std::string type = p.value("type", "");
  if (type == "Sequence") {
    for (const auto& q : p.at("pretokenizers")) add_pre_tokenizer(q, s, desc);
    return;
  }
  if (!desc.empty()) desc += "+";
  if (type == "Split") {
    const std::string behavior = p.value("behavior", "");
    QB_CHECK(behavior == "Isolated", "pre_tokenizer Split with behavior '{}' is not supported (only Isolated)", behavior);
    QB_CHECK(!p.value("invert", false), "pre_tokenizer Split with invert=true is not supported");
    const json& pat = p.at("pattern");
    if (pat.contains("Regex")) {
      s.pre_regexes.push_back(pat.at("Regex").get<std::string>());
    } else {
      s.pre_regexes.push_back(quote_literal(pat.at("String").get<std::string>()));
    }
    desc += "Split";
  } else if (type == "ByteLevel") {
    QB_CHECK(!p.value("add_prefix_space", false), "pre_tokenizer ByteLevel with add_prefix_space=true is not supported");
    if (p.value("use_regex", true)) s.pre_regexes.push_back(kGpt2Regex);
    desc += "ByteLevel";
  } else if (type == "Digits") {
    s.pre_regexes.push_back(p.value("individual_digits", false) ? R"(\p{N})" : R"(\p{N}+)");
    desc += "Digits";
  } else {
    fail("pre_tokenizer type '{}' is not supported", type);
  }
}

// tokenizer_config.json names special tokens as strings or as {"content": ...}.
std::optional<std::string> config_token(const json& cfg, const char* key) {
  if (!cfg.contains(key) || cfg.at(key).is_null()) return std::nullopt;
  const json& v = cfg.at(key);
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content")) return v.at("content").get<std::string>();
  return std::nullopt;
}

VocabSpec spec_from_json(std::string_view text, std::string_view config_text) {
  const json j = json::parse(text.begin(), text.end());
  const json& m = j.at("model");
  const std::string mtype = m.value("type", "");
  QB_CHECK(mtype == "BPE", "model type '{}' is not supported (only BPE)", mtype);
  QB_CHECK(!m.value("byte_fallback", false), "BPE with byte_fallback=true is not supported");

  VocabSpec s;
  s.algorithm = Algorithm::Bpe;
  s.model_name = "gpt2";  // what llama.cpp calls byte-level BPE
  s.ignore_merges = m.value("ignore_merges", false);
  s.clean_spaces = false;

  // Vocabulary: ids from the model's vocab and the added tokens; gaps become unused placeholders.
  std::map<int64_t, std::string> by_id;
  for (const auto& [tok, id] : m.at("vocab").items()) {
    const int64_t i = id.get<int64_t>();
    QB_CHECK(i >= 0 && i < (int64_t(1) << 24), "model.vocab: token '{}' has id {}", tok, i);
    by_id[i] = tok;
  }
  struct Added {
    std::string content;
    bool special, lstrip, rstrip;
  };
  std::map<int64_t, Added> added;
  if (j.contains("added_tokens")) {
    for (const auto& a : j.at("added_tokens")) {
      const int64_t i = a.at("id").get<int64_t>();
      QB_CHECK(i >= 0 && i < (int64_t(1) << 24), "added_tokens: id {}", i);
      added[i] = {a.at("content").get<std::string>(), a.value("special", false), a.value("lstrip", false),
                  a.value("rstrip", false)};
    }
  }
  int64_t n = 0;
  if (!by_id.empty()) n = by_id.rbegin()->first + 1;
  if (!added.empty()) n = std::max(n, added.rbegin()->first + 1);
  s.tokens.resize(size_t(n));
  for (int64_t i = 0; i < n; ++i) {
    TokenInfo& t = s.tokens[size_t(i)];
    if (auto a = added.find(i); a != added.end()) {
      t.text = a->second.content;
      t.type = a->second.special ? TokenType::Control : TokenType::UserDefined;
      t.lstrip = a->second.lstrip;
      t.rstrip = a->second.rstrip;
    } else if (auto v = by_id.find(i); v != by_id.end()) {
      t.text = v->second;
    } else {
      t.text = "[UNUSED_" + std::to_string(i) + "]";
      t.type = TokenType::Unused;
    }
  }

  const json& merges = m.at("merges");
  s.merges.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const json& e = merges[i];
    if (e.is_string()) {
      const std::string str = e.get<std::string>();
      const size_t sp = str.find(' ', 1);
      QB_CHECK(sp != std::string::npos && sp + 1 < str.size(), "model.merges[{}]: '{}' is not 'left right'", i, str);
      s.merges.emplace_back(str.substr(0, sp), str.substr(sp + 1));
    } else {
      QB_CHECK(e.is_array() && e.size() == 2, "model.merges[{}]: neither 'a b' nor [a, b]", i);
      s.merges.emplace_back(e[0].get<std::string>(), e[1].get<std::string>());
    }
  }
  QB_CHECK(!s.merges.empty(), "model.merges: missing or empty");

  std::string desc;
  if (j.contains("pre_tokenizer") && !j.at("pre_tokenizer").is_null()) add_pre_tokenizer(j.at("pre_tokenizer"), s, desc);
  QB_CHECK(!s.pre_regexes.empty(), "pre_tokenizer: none that splits text (a ByteLevel or Split is needed)");
  s.pre_name = "tokenizer.json:" + desc;

  if (j.contains("normalizer") && !j.at("normalizer").is_null()) {
    const std::string nt = j.at("normalizer").value("type", "");
    QB_CHECK(nt == "NFC", "normalizer '{}' is not supported", nt);
    s.notes.push_back("tokenizer.json normalizer NFC is not applied: input text is assumed to be NFC already");
  }
  if (j.contains("decoder") && !j.at("decoder").is_null()) {
    const std::string dt = j.at("decoder").value("type", "");
    if (dt != "ByteLevel") s.notes.push_back("tokenizer.json decoder '" + dt + "' treated as ByteLevel");
  }
  const auto id_of = [&](const std::string& t) -> TokenId {
    for (size_t i = 0; i < s.tokens.size(); ++i)
      if (s.tokens[i].text == t) return TokenId(i);
    fail("special token '{}' is not in the vocabulary", t);
  };
  // A TemplateProcessing post-processor says which special tokens frame a single sequence.
  if (j.contains("post_processor") && !j.at("post_processor").is_null() &&
      j.at("post_processor").value("type", "") == "TemplateProcessing") {
    const json& single = j.at("post_processor").at("single");
    if (!single.empty() && single.front().contains("SpecialToken")) {
      s.bos = id_of(single.front().at("SpecialToken").at("id").get<std::string>());
      s.add_bos = true;
    }
    if (!single.empty() && single.back().contains("SpecialToken")) {
      s.eos = id_of(single.back().at("SpecialToken").at("id").get<std::string>());
      s.add_eos = true;
    }
  }
  if (!config_text.empty()) {
    const json cfg = json::parse(config_text.begin(), config_text.end());
    if (auto t = config_token(cfg, "bos_token")) s.bos = id_of(*t);
    if (auto t = config_token(cfg, "eos_token")) s.eos = id_of(*t);
    if (auto t = config_token(cfg, "unk_token")) s.unk = id_of(*t);
    if (auto t = config_token(cfg, "pad_token")) s.pad = id_of(*t);
    if (cfg.contains("add_bos_token") && cfg.at("add_bos_token").is_boolean()) s.add_bos = cfg.at("add_bos_token").get<bool>();
    if (cfg.contains("add_eos_token") && cfg.at("add_eos_token").is_boolean()) s.add_eos = cfg.at("add_eos_token").get<bool>();
    if (cfg.contains("clean_up_tokenization_spaces") && cfg.at("clean_up_tokenization_spaces").is_boolean())
      s.clean_spaces = cfg.at("clean_up_tokenization_spaces").get<bool>();
  } else {
    s.notes.push_back("no tokenizer_config.json: no BOS/EOS ids beyond the post-processor's, no decode clean-up");
  }
  return s;
}

}  // namespace

Tokenizer Tokenizer::from_hf_json(std::string_view json_text, const std::string& origin, std::string_view config_json) {
  try {
    return Tokenizer(spec_from_json(json_text, config_json));
  } catch (const std::exception& e) {  // json errors included: one line naming the file
    rethrow_with_context(e, origin);
  }
}

Tokenizer Tokenizer::from_hf_json_file(const std::string& path, const std::string& config_path) {
  const std::string text = read_file_maybe_gz(path);
  const std::string cfg = config_path.empty() ? std::string() : read_file_maybe_gz(config_path);
  return from_hf_json(text, path, cfg);
}

}  // namespace qb::tokenizer
