// Loads a Tokenizer from GGUF metadata (tokenizer.ggml.*). Defaults for absent keys are llama.cpp's
// (llama_vocab::impl::load), since a GGUF means what llama.cpp makes of it: e.g. SPM adds BOS unless
// told otherwise, a special-token id outside the vocabulary (stories260K's padding_token_id 4294967295)
// means "none", and Phi-3 vocabularies strip whitespace to the right of their special tokens.
#include <algorithm>
#include <cctype>

#include "quantbench/core/error.h"
#include "quantbench/formats/gguf_reader.h"
#include "quantbench/tokenizer/pretokenizer.h"
#include "quantbench/tokenizer/tokenizer.h"

namespace qb::tokenizer {

namespace {

VocabSpec spec_from_gguf(const formats::GgufFile& f) {
  VocabSpec s;
  s.model_name = f.get_string("tokenizer.ggml.model");
  const std::string pre = f.find_string("tokenizer.ggml.pre").value_or("");
  s.pre_name = pre;
  if (s.model_name == "llama") {
    s.algorithm = Algorithm::Spm;
    s.bos = 1, s.eos = 2, s.unk = 0;
    s.add_bos = true, s.add_eos = false;
    s.add_space_prefix = true;
    s.clean_spaces = false;
  } else if (s.model_name == "gpt2") {
    s.algorithm = Algorithm::Bpe;
    s.bos = 11, s.eos = 11;  // llama.cpp's defaults for BPE files that name none
    PreTokenizerConfig pc;
    try {
      pc = pre_tokenizer_config(pre);
    } catch (const std::exception& e) {
      rethrow_with_context(e, f.path() + ": metadata tokenizer.ggml.pre");
    }
    if (pre.empty()) s.notes.push_back("tokenizer.ggml.pre absent: llama.cpp's 'default' pre-tokenizer used");
    s.pre_regexes = pc.regexes;
    s.clean_spaces = pc.clean_spaces;
    s.ignore_merges = pc.ignore_merges;
    s.add_bos = pc.add_bos;
    if (!f.has("tokenizer.ggml.merges")) fail("{}: metadata tokenizer.ggml.merges: missing (needed by a gpt2 tokenizer)", f.path());
    const auto merges = f.get_string_array("tokenizer.ggml.merges");
    s.merges.reserve(merges.size());
    for (size_t i = 0; i < merges.size(); ++i) {
      const std::string& m = merges[i];
      const size_t sp = m.find(' ', 1);  // from 1: a merge may start with a space-image such as "Ġ"
      if (sp == std::string::npos || sp + 1 >= m.size())
        fail("{}: metadata tokenizer.ggml.merges[{}]: '{}' is not 'left right'", f.path(), i, m);
      s.merges.emplace_back(m.substr(0, sp), m.substr(sp + 1));
    }
  } else {
    fail("{}: metadata tokenizer.ggml.model: '{}' is not supported (only 'llama' SPM and 'gpt2' BPE)", f.path(), s.model_name);
  }
  if (auto v = f.find_bool("tokenizer.ggml.add_space_prefix")) s.add_space_prefix = *v;

  auto texts = f.get_string_array("tokenizer.ggml.tokens");
  const size_t n = texts.size();
  std::vector<float> scores;
  if (f.has("tokenizer.ggml.scores")) {
    scores = f.get_float_array("tokenizer.ggml.scores");
    QB_CHECK(scores.size() >= n, "{}: metadata tokenizer.ggml.scores: {} entries for {} tokens", f.path(), scores.size(), n);
  }
  std::vector<int64_t> types;
  if (f.has("tokenizer.ggml.token_type")) {
    types = f.get_int_array("tokenizer.ggml.token_type");
    QB_CHECK(types.size() >= n, "{}: metadata tokenizer.ggml.token_type: {} entries for {} tokens", f.path(), types.size(), n);
  }
  s.tokens.resize(n);
  for (size_t i = 0; i < n; ++i) {
    TokenInfo& t = s.tokens[i];
    t.text = std::move(texts[i]);
    if (!scores.empty()) t.score = scores[i];
    if (!types.empty()) {
      const int64_t ty = types[i];
      t.type = (ty >= 1 && ty <= 6) ? TokenType(ty) : TokenType::Undefined;
    }
  }

  // Special ids: a value outside the vocabulary keeps the default, as in llama.cpp.
  const auto read_id = [&](const char* key, TokenId& id) {
    const auto* v = f.find(key);
    if (!v) return;
    if (!v->is_integer()) fail("{}: metadata {}: not an integer", f.path(), key);
    const auto u = f.find_int(key);
    if (u && *u >= 0 && uint64_t(*u) < n) {
      id = TokenId(*u);
    } else {
      s.notes.push_back(fmt::format("{} is outside the vocabulary; default ({}) kept", key, id));
    }
  };
  // find_int throws for a u64 that does not fit int64, so read unsigned values defensively.
  const auto read_id_safe = [&](const char* key, TokenId& id) {
    try {
      read_id(key, id);
    } catch (const Error&) {
      s.notes.push_back(fmt::format("{} is outside the vocabulary; default ({}) kept", key, id));
    }
  };
  read_id_safe("tokenizer.ggml.bos_token_id", s.bos);
  read_id_safe("tokenizer.ggml.eos_token_id", s.eos);
  read_id_safe("tokenizer.ggml.unknown_token_id", s.unk);
  read_id_safe("tokenizer.ggml.padding_token_id", s.pad);
  for (TokenId* id : {&s.bos, &s.eos, &s.unk, &s.pad})
    if (*id != kNoToken && size_t(*id) >= n) *id = kNoToken;  // a default beyond a small vocabulary
  if (auto v = f.find_bool("tokenizer.ggml.add_bos_token")) s.add_bos = *v;
  if (auto v = f.find_bool("tokenizer.ggml.add_eos_token")) s.add_eos = *v;
  QB_CHECK(!s.add_bos || s.bos != kNoToken, "{}: tokenizer.ggml.add_bos_token is true but there is no BOS token", f.path());
  QB_CHECK(!s.add_eos || s.eos != kNoToken, "{}: tokenizer.ggml.add_eos_token is true but there is no EOS token", f.path());

  // Phi-3: llama.cpp sets rstrip on every special token but <unk>, <s>, <|endoftext|>; </s> gets it too.
  std::string name = f.find_string("general.name").value_or("");
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  if (name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos) {
    for (auto& t : s.tokens) {
      const bool special = t.type == TokenType::Control || t.type == TokenType::UserDefined || t.type == TokenType::Unknown;
      if (special || t.text == "</s>") t.rstrip = true;
      if (t.text == "<unk>" || t.text == "<s>" || t.text == "<|endoftext|>") t.rstrip = false;
    }
    s.notes.push_back("Phi-3 vocabulary: rstrip on special tokens (llama.cpp rule)");
  }
  return s;
}

}  // namespace

Tokenizer Tokenizer::from_gguf(const formats::GgufFile& file) {
  try {
    return Tokenizer(spec_from_gguf(file));
  } catch (const Error& e) {
    const std::string what = e.what();
    if (what.rfind(file.path(), 0) == 0) throw;
    rethrow_with_context(e, file.path());
  }
}

Tokenizer Tokenizer::from_gguf_file(const std::string& path) {
  const auto f = formats::GgufFile::open(path);
  return from_gguf(*f);
}

}  // namespace qb::tokenizer
