// Tokenizer core: vocabulary checks, special-token partition, SPM and BPE encoding, decoding.
// Each algorithm follows llama.cpp's llama-vocab.cpp step for step (same tie-breaks in the merge queues,
// same fall-backs), because the point is to produce exactly the ids llama.cpp and Hugging Face produce.
#include "quantbench/tokenizer/tokenizer.h"

#include <algorithm>
#include <queue>
#include <unordered_set>

#include "quantbench/core/error.h"
#include "quantbench/tokenizer/pretokenizer.h"
#include "quantbench/tokenizer/utf8.h"

namespace qb::tokenizer {

const char* token_type_name(TokenType t) {
  switch (t) {
    case TokenType::Undefined: return "undefined";
    case TokenType::Normal: return "normal";
    case TokenType::Unknown: return "unknown";
    case TokenType::Control: return "control";
    case TokenType::UserDefined: return "user-defined";
    case TokenType::Unused: return "unused";
    case TokenType::Byte: return "byte";
  }
  return "?";
}

namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's visible space

std::string merge_key(std::string_view a, std::string_view b) {
  std::string k;
  k.reserve(a.size() + b.size() + 1);
  k.append(a).push_back('\0');  // token texts never hold NUL (byte-level maps it to U+0100)
  k.append(b);
  return k;
}

bool ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }

std::optional<uint8_t> parse_byte_token(std::string_view t) {
  if (t.size() != 6 || t.substr(0, 3) != "<0x" || t[5] != '>') return std::nullopt;
  const auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int hi = hex(t[3]), lo = hex(t[4]);
  if (hi < 0 || lo < 0) return std::nullopt;
  return uint8_t(hi * 16 + lo);
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  for (;;) {
    const size_t hit = s.find(from, pos);
    if (hit == std::string::npos) break;
    out.append(s, pos, hit - pos).append(to);
    pos = hit + from.size();
  }
  out.append(s, pos, std::string::npos);
  s = std::move(out);
}

// llama.cpp's three decode-time clean-up passes (the Hugging Face clean_up_tokenization rules).
std::string clean_spaces(const std::string& s) {
  if (s.size() < 2) return s;
  std::string a;  // pass 1: " ?" " !" " ." " ," lose the space
  a.push_back(s[0]);
  for (size_t i = 1; i < s.size(); ++i) {
    const char x = s[i];
    if (s[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) a.pop_back();
    a.push_back(x);
  }
  std::string src = a, b;  // pass 2: " ' " becomes "'"
  b.push_back(src[0]);
  for (size_t i = 1; i < src.size(); ++i) {
    const char x = src[i];
    if (x == '\'' && i + 1 < src.size() && src[i - 1] == ' ' && src[i + 1] == ' ') {
      b.pop_back();
      src[++i] = '\0';
    }
    b.push_back(x);
  }
  std::string c;  // pass 3: " 's" " 'm" " 're" " 've" lose the space
  c.push_back(b[0]);
  for (size_t i = 1; i < b.size(); ++i) {
    const char x = b[i];
    if (b[i - 1] == ' ' && x == '\'' && i + 1 < b.size()) {
      const char x1 = b[i + 1];
      if (x1 == 's' || x1 == 'm') {
        c.pop_back();
      } else if (i + 2 < b.size()) {
        const char x2 = b[i + 2];
        if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) c.pop_back();
      }
    }
    c.push_back(x);
  }
  return c;
}

// Token texts llama.cpp treats as end-of-generation (and forces to control type).
bool eog_text(std::string_view t) {
  static constexpr std::string_view kNames[] = {
      "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>", "_<EOT>",
      "<|end_of_text|>", "<end_of_utterance>", "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>"};
  for (auto n : kNames)
    if (t == n) return true;
  return false;
}

struct Fragment {
  bool is_token;
  TokenId id;
  size_t off, len;  // into the raw text, for text fragments
};

}  // namespace

// Heterogeneous lookup: the encoders probe with string_views into the text, without allocating.
struct SvHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

struct Tokenizer::Impl {
  std::unordered_map<std::string, TokenId, SvHash, std::equal_to<>> text_to_id;
  std::unordered_map<std::string, int, SvHash, std::equal_to<>> merge_rank;
  std::vector<TokenId> special_cache;  // control, user-defined, unknown: longest text first
  std::unordered_set<TokenId> eog;
  std::unique_ptr<RegexSplitter> splitter;
};

Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

Tokenizer::Tokenizer(VocabSpec spec) : spec_(std::move(spec)), impl_(std::make_unique<Impl>()) {
  auto& s = spec_;
  QB_CHECK(!s.tokens.empty(), "tokenizer '{}': empty vocabulary", s.model_name);
  QB_CHECK(s.tokens.size() < size_t(INT32_MAX), "tokenizer: vocabulary of {} tokens is too large", s.tokens.size());
  const auto n = TokenId(s.tokens.size());
  impl_->text_to_id.reserve(s.tokens.size());
  for (TokenId i = 0; i < n; ++i) {
    auto& t = s.tokens[i];
    if (t.text.empty()) t.text = "[EMPTY_" + std::to_string(i) + "]";  // as llama.cpp: never match empty text
    const auto [it, fresh] = impl_->text_to_id.emplace(t.text, i);
    QB_CHECK(fresh, "tokenizer: duplicate token text '{}' at ids {} and {}", t.text, it->second, i);
    if (t.type == TokenType::Byte)
      QB_CHECK(parse_byte_token(t.text).has_value(), "tokenizer: byte token {} has text '{}', not <0xHH>", i, t.text);
    if (eog_text(t.text)) {
      impl_->eog.insert(i);
      if (t.type != TokenType::Control) t.type = TokenType::Control;  // llama.cpp's override, same reason
    }
  }
  const auto check_id = [&](TokenId& id, const char* what) {
    if (id != kNoToken && (id < 0 || id >= n)) {
      s.notes.push_back(fmt::format("{} id {} is outside the vocabulary ({} tokens); treated as none", what, id, n));
      id = kNoToken;
    }
  };
  check_id(s.bos, "BOS");
  check_id(s.eos, "EOS");
  check_id(s.unk, "UNK");
  check_id(s.pad, "PAD");
  QB_CHECK(!s.add_bos || s.bos != kNoToken, "tokenizer '{}': add_bos is set but there is no BOS token", s.model_name);
  QB_CHECK(!s.add_eos || s.eos != kNoToken, "tokenizer '{}': add_eos is set but there is no EOS token", s.model_name);
  if (s.eos != kNoToken) impl_->eog.insert(s.eos);

  for (TokenId i = 0; i < n; ++i) {
    const auto ty = s.tokens[i].type;
    if (ty == TokenType::Control || ty == TokenType::UserDefined || ty == TokenType::Unknown) impl_->special_cache.push_back(i);
  }
  std::stable_sort(impl_->special_cache.begin(), impl_->special_cache.end(),
                   [&](TokenId a, TokenId b) { return s.tokens[a].text.size() > s.tokens[b].text.size(); });

  if (s.algorithm == Algorithm::Bpe) {
    QB_CHECK(!s.merges.empty(), "tokenizer '{}': byte-level BPE vocabulary without merges", s.model_name);
    QB_CHECK(!s.pre_regexes.empty(), "tokenizer '{}': byte-level BPE without pre-tokenizer regexes", s.model_name);
    impl_->merge_rank.reserve(s.merges.size());
    for (size_t r = 0; r < s.merges.size(); ++r) {
      const auto& [a, b] = s.merges[r];
      QB_CHECK(!a.empty() && !b.empty(), "tokenizer '{}': merge {} has an empty side", s.model_name, r);
      impl_->merge_rank.emplace(merge_key(a, b), int(r));  // first occurrence keeps the better rank
    }
    impl_->splitter = std::make_unique<RegexSplitter>(s.pre_regexes);
  }
}

const TokenInfo& Tokenizer::token(TokenId id) const {
  QB_CHECK(id >= 0 && size_t(id) < spec_.tokens.size(), "token id {} is outside the vocabulary ({} tokens)", id,
           spec_.tokens.size());
  return spec_.tokens[size_t(id)];
}

std::optional<TokenId> Tokenizer::find(std::string_view text) const {
  const auto it = impl_->text_to_id.find(text);
  if (it == impl_->text_to_id.end()) return std::nullopt;
  return it->second;
}

bool Tokenizer::is_eog(TokenId id) const { return impl_->eog.count(id) > 0; }

std::vector<TokenId> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  // 1. Split out special tokens written in the text, longest first (llama.cpp tokenizer_st_partition).
  std::vector<Fragment> frags;
  if (!text.empty()) frags.push_back({false, kNoToken, 0, text.size()});
  for (const TokenId sid : impl_->special_cache) {
    const TokenInfo& tok = spec_.tokens[size_t(sid)];
    if (!parse_special && (tok.type == TokenType::Control || tok.type == TokenType::Unknown)) continue;
    std::vector<Fragment> next;
    next.reserve(frags.size());
    for (const Fragment& f : frags) {
      if (f.is_token) {
        next.push_back(f);
        continue;
      }
      size_t off = f.off, len = f.len;
      while (len > 0) {
        const size_t hit = text.substr(off, len).find(tok.text);
        if (hit == std::string_view::npos) break;
        size_t left_len = hit;
        if (tok.lstrip)
          while (left_len > 0 && ascii_space(text[off + left_len - 1])) --left_len;
        if (left_len > 0) next.push_back({false, kNoToken, off, left_len});
        next.push_back({true, sid, 0, 0});
        size_t r_off = off + hit + tok.text.size();
        size_t r_len = off + len - r_off;
        if (tok.rstrip)
          while (r_len > 0 && ascii_space(text[r_off])) ++r_off, --r_len;
        off = r_off;
        len = r_len;
      }
      if (len > 0) next.push_back({false, kNoToken, off, len});
    }
    frags = std::move(next);
  }

  // 2. Encode the text fragments.
  std::vector<TokenId> out;
  if (add_special && spec_.add_bos) out.push_back(spec_.bos);
  bool prev_special = true;  // SPM: the first fragment and any after a special token get a leading space
  for (const Fragment& f : frags) {
    if (f.is_token) {
      out.push_back(f.id);
      prev_special = true;
      continue;
    }
    const std::string_view piece = text.substr(f.off, f.len);
    if (spec_.algorithm == Algorithm::Spm) {
      std::string t;
      if (spec_.add_space_prefix && prev_special) t = " ";
      t.append(piece);
      replace_all(t, " ", kSpace);
      encode_spm(t, out);
    } else {
      encode_bpe(piece, out);
    }
    prev_special = false;
  }
  if (add_special && spec_.add_eos) out.push_back(spec_.eos);
  return out;
}

TokenId Tokenizer::byte_token(uint8_t b) const {
  static constexpr char kHex[] = "0123456789ABCDEF";
  const char name[7] = {'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>', 0};
  if (auto id = find(name)) return *id;
  const char one = char(b);
  if (auto id = find(std::string_view(&one, 1))) return *id;
  if (spec_.unk != kNoToken) return spec_.unk;
  fail("tokenizer '{}': no byte token for 0x{:02X} and no unknown token", spec_.model_name, b);
}

namespace {
struct Symbol {
  int prev, next;
  size_t start, n;  // byte range in the text being merged
};
}  // namespace

void Tokenizer::encode_spm(std::string_view text, std::vector<TokenId>& out) const {
  std::vector<Symbol> sym;
  for (size_t off = 0; off < text.size();) {
    const size_t n = std::min(utf8_lead_len(uint8_t(text[off])), text.size() - off);
    const int idx = int(sym.size());
    sym.push_back({idx - 1, off + n == text.size() ? -1 : idx + 1, off, n});
    off += n;
  }
  struct Bigram {
    int left, right;
    float score;
    size_t size;
  };
  // Highest score first; on a tie the leftmost pair (llama.cpp's comparator).
  const auto cmp = [](const Bigram& l, const Bigram& r) {
    return l.score < r.score || (l.score == r.score && l.left > r.left);
  };
  std::priority_queue<Bigram, std::vector<Bigram>, decltype(cmp)> queue(cmp);
  std::unordered_map<std::string, std::pair<int, int>> rev_merge;
  const auto try_add = [&](int l, int r) {
    if (l == -1 || r == -1) return;
    const std::string_view t = text.substr(sym[l].start, sym[l].n + sym[r].n);
    const auto id = find(t);
    if (!id) return;
    queue.push({l, r, spec_.tokens[size_t(*id)].score, t.size()});
    rev_merge[std::string(t)] = {l, r};
  };
  for (int i = 1; i < int(sym.size()); ++i) try_add(i - 1, i);
  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Symbol& l = sym[b.left];
    Symbol& r = sym[b.right];
    if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;  // stale
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }
  // Emit: a symbol is a token, or splits back along the merge that made it, or becomes bytes.
  std::vector<int> stack;
  for (int i = sym.empty() ? -1 : 0; i != -1; i = sym[i].next) {
    stack.push_back(i);
    while (!stack.empty()) {
      const int k = stack.back();
      stack.pop_back();
      const std::string t(text.substr(sym[k].start, sym[k].n));
      if (const auto id = find(std::string_view(t))) {
        out.push_back(*id);
        continue;
      }
      const auto rm = rev_merge.find(t);
      if (rm == rev_merge.end()) {
        for (char c : t) out.push_back(byte_token(uint8_t(c)));
        continue;
      }
      stack.push_back(rm->second.second);
      stack.push_back(rm->second.first);
    }
  }
}

void Tokenizer::encode_bpe(std::string_view raw, std::vector<TokenId>& out) const {
  const std::string text = sanitize_utf8(raw);
  const auto& bu = byte_unicode();
  struct Bigram {
    int left, right;
    std::string text;
    int rank;
  };
  const auto cmp = [](const Bigram& l, const Bigram& r) {
    return l.rank > r.rank || (l.rank == r.rank && l.left > r.left);
  };
  for (const Piece& p : impl_->splitter->split(text)) {
    const std::string word = bu.encode_bytes(std::string_view(text).substr(p.begin, p.end - p.begin));
    std::vector<Symbol> sym;
    if (spec_.ignore_merges && find(word)) {
      sym.push_back({-1, -1, 0, word.size()});
    } else {
      for (size_t off = 0; off < word.size();) {
        const size_t n = std::min(utf8_lead_len(uint8_t(word[off])), word.size() - off);
        const int idx = int(sym.size());
        sym.push_back({idx - 1, off + n == word.size() ? -1 : idx + 1, off, n});
        off += n;
      }
    }
    std::priority_queue<Bigram, std::vector<Bigram>, decltype(cmp)> queue(cmp);
    const auto try_add = [&](int l, int r) {
      if (l == -1 || r == -1) return;
      const std::string_view a(word.data() + sym[l].start, sym[l].n), b(word.data() + sym[r].start, sym[r].n);
      const auto it = impl_->merge_rank.find(merge_key(a, b));
      if (it == impl_->merge_rank.end()) return;
      queue.push({l, r, std::string(a) + std::string(b), it->second});
    };
    for (int i = 1; i < int(sym.size()); ++i) try_add(i - 1, i);
    while (!queue.empty()) {
      const Bigram b = queue.top();
      queue.pop();
      Symbol& l = sym[b.left];
      Symbol& r = sym[b.right];
      if (l.n == 0 || r.n == 0) continue;
      // Outdated if either side has merged since (llama.cpp compares the texts).
      if (l.start + l.n != r.start || l.n + r.n != b.text.size() ||
          std::string_view(word.data() + l.start, l.n + r.n) != b.text)
        continue;
      l.n += r.n;
      r.n = 0;
      l.next = r.next;
      if (r.next >= 0) sym[r.next].prev = b.left;
      try_add(l.prev, b.left);
      try_add(b.left, l.next);
    }
    for (const Symbol& s : sym) {
      if (s.n == 0) continue;
      const std::string_view t(word.data() + s.start, s.n);
      if (const auto id = find(t)) {
        out.push_back(*id);
      } else {
        // llama.cpp looks each byte of the symbol up on its own and drops the ones it cannot find.
        for (char c : t)
          if (const auto bid = find(std::string_view(&c, 1))) out.push_back(*bid);
      }
    }
  }
}

std::string Tokenizer::token_to_piece(TokenId id, bool render_special) const {
  const TokenInfo& t = token(id);
  switch (t.type) {
    case TokenType::Control:
    case TokenType::Unknown:
      return render_special ? t.text : std::string();
    case TokenType::UserDefined:
      return t.text;
    case TokenType::Byte:
      return std::string(1, char(*parse_byte_token(t.text)));
    case TokenType::Normal:
      break;
    default:
      return {};  // unused/undefined print nothing, as in llama.cpp
  }
  if (spec_.algorithm == Algorithm::Spm) {
    std::string r = t.text;
    replace_all(r, kSpace, " ");
    return r;
  }
  // Byte-level: every code point is the image of one byte. A code point outside the table (a vocabulary
  // bug) is kept as its UTF-8 rather than lost.
  std::string r;
  const std::string_view s = t.text;
  const auto& bu = byte_unicode();
  for (size_t pos = 0; pos < s.size();) {
    const size_t start = pos;
    const auto cp = decode_utf8_at(s, pos);
    if (!cp) {
      r.push_back(s[start]);
      pos = start + 1;
    } else if (const auto b = bu.decode(*cp)) {
      r.push_back(char(*b));
    } else {
      r.append(s.substr(start, pos - start));
    }
  }
  return r;
}

std::string Tokenizer::decode(std::span<const TokenId> ids, bool render_special) const {
  std::string out;
  bool remove_space = spec_.add_space_prefix;  // SPM: drop the space the encoder put in front
  for (const TokenId id : ids) {
    std::string piece = token_to_piece(id, render_special);
    if (remove_space && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
    remove_space = false;
    out += piece;
  }
  return spec_.clean_spaces ? clean_spaces(out) : out;
}

std::string Tokenizer::decode_text(std::span<const TokenId> ids, bool render_special) const {
  return replace_invalid_utf8(decode(ids, render_special));
}

}  // namespace qb::tokenizer
