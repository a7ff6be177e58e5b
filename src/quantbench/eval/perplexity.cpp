// Perplexity + KL: windows are built once, each batch of windows runs through the baseline (or comes
// from the top-K cache) and then through the candidate, and every scored token is reduced to a few
// doubles at once so full logits never outlive their batch.
#include "quantbench/eval/perplexity.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <regex>

#include "quantbench/core/error.h"
#include "quantbench/core/mapped_file.h"
#include "quantbench/core/progress.h"
#include "quantbench/core/sha256.h"
#include "quantbench/eval/paired_metrics.h"

namespace qb::eval {

std::string convention_name(PplConvention c) {
  return c == PplConvention::LlamaCpp ? "llama.cpp" : "rolling";
}

PplConvention parse_convention(const std::string& s) {
  if (s == "llama.cpp" || s == "llamacpp") return PplConvention::LlamaCpp;
  if (s == "rolling" || s == "lm-eval") return PplConvention::Rolling;
  fail("unknown perplexity convention '{}' (expected llama.cpp or rolling)", s);
}

std::vector<PplWindow> llamacpp_windows(const std::vector<int32_t>& tokens, int64_t n_ctx, int32_t bos) {
  QB_CHECK(n_ctx >= 4, "perplexity: n_ctx must be at least 4, got {}", n_ctx);
  const int64_t n_chunks = int64_t(tokens.size()) / n_ctx;
  QB_CHECK(n_chunks >= 1, "perplexity: the text has {} tokens, fewer than one chunk of n_ctx = {}", tokens.size(), n_ctx);
  std::vector<PplWindow> out;
  const int64_t first = n_ctx / 2;
  for (int64_t c = 0; c < n_chunks; ++c) {
    PplWindow w;
    w.input.assign(tokens.begin() + c * n_ctx, tokens.begin() + (c + 1) * n_ctx);
    w.first = first;
    // Targets are the original tokens; only the input's first token becomes BOS (llama.cpp restores it).
    w.targets.assign(w.input.begin() + first + 1, w.input.end());
    if (bos >= 0) w.input[0] = bos;
    out.push_back(std::move(w));
  }
  return out;
}

std::vector<PplWindow> rolling_windows(const std::vector<int32_t>& tokens, int32_t prefix, int64_t max_len) {
  QB_CHECK(max_len >= 1, "perplexity: window length must be positive, got {}", max_len);
  std::vector<PplWindow> out;
  if (tokens.empty()) return out;
  const int64_t n = int64_t(tokens.size());
  // seq = [prefix] + tokens; token j sits at seq[j + 1].
  auto seq_at = [&](int64_t i) { return i == 0 ? prefix : tokens[size_t(i - 1)]; };
  const int64_t first_len = std::min(max_len, n);
  {
    PplWindow w;
    for (int64_t i = 0; i < first_len; ++i) w.input.push_back(seq_at(i));
    w.first = 0;
    w.targets.assign(tokens.begin(), tokens.begin() + first_len);
    out.push_back(std::move(w));
  }
  int64_t predicted = first_len;
  while (predicted < n) {
    const int64_t wpl = std::min(n - predicted, max_len);
    const int64_t end = predicted + wpl;  // predicts tokens[end - wpl, end)
    PplWindow w;
    for (int64_t i = end - max_len; i < end; ++i) w.input.push_back(seq_at(i));
    w.first = max_len - wpl;
    w.targets.assign(tokens.begin() + (end - wpl), tokens.begin() + end);
    out.push_back(std::move(w));
    predicted = end;
  }
  return out;
}

// ---- cache -------------------------------------------------------------------------------------------

namespace {

constexpr char kMagic[8] = {'Q', 'B', 'T', 'O', 'P', 'K', '0', '1'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderBytes = 8 + 4 + 4 + 8 * 3 + 64 * 3;

size_t record_bytes(uint32_t k) { return 4 + 8 + 8 + size_t(k) * 12; }

template <class T>
void put(std::vector<uint8_t>& b, T v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  b.insert(b.end(), p, p + sizeof(T));
}
void put_hex(std::vector<uint8_t>& b, const std::string& s, const char* what) {
  QB_CHECK(s.size() == 64, "top-K cache: {} must be 64 hex characters, got {}", what, s.size());
  b.insert(b.end(), s.begin(), s.end());
}

}  // namespace

void write_topk_cache(const std::string& path, const TopKCache& c) {
  const auto& h = c.header;
  QB_CHECK(c.offsets.size() == h.n_windows + 1 && c.tokens.size() == h.n_tokens && c.offsets.back() == h.n_tokens,
           "{}: top-K cache inconsistent with its header", path);
  AtomicFileWriter w(path);
  std::vector<uint8_t> b;
  b.insert(b.end(), kMagic, kMagic + 8);
  put(b, kVersion);
  put(b, h.k);
  put(b, h.n_vocab);
  put(b, h.n_windows);
  put(b, h.n_tokens);
  put_hex(b, h.model_sha256, "model sha256");
  put_hex(b, h.text_sha256, "text sha256");
  put_hex(b, h.settings_sha256, "settings sha256");
  for (uint64_t o : c.offsets) put(b, o);
  w.write(b.data(), b.size());
  for (const auto& t : c.tokens) {
    QB_CHECK(t.topk.k() == h.k, "{}: token with {} stored entries, header says K = {}", path, t.topk.k(), h.k);
    b.clear();
    put(b, t.ref);
    put(b, t.ref_logprob);
    put(b, t.topk.rest_logmass);
    for (int32_t id : t.topk.ids) put(b, id);
    for (double lp : t.topk.logprobs) put(b, lp);
    w.write(b.data(), b.size());
  }
  w.commit();
}

TopKCache read_topk_cache(const std::string& path, const TopKCacheHeader& e) {
  std::ifstream in(path, std::ios::binary);
  QB_CHECK(bool(in), "{}: cannot open top-K cache", path);
  std::vector<uint8_t> d((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  QB_CHECK(d.size() >= kHeaderBytes, "{}: top-K cache truncated ({} bytes, header needs {})", path, d.size(), kHeaderBytes);
  QB_CHECK(std::memcmp(d.data(), kMagic, 8) == 0, "{}: not a quantbench top-K cache (bad magic)", path);
  size_t at = 8;
  auto get = [&](auto& v) {
    QB_CHECK(at + sizeof(v) <= d.size(), "{}: top-K cache truncated at byte {}", path, at);
    std::memcpy(&v, d.data() + at, sizeof(v));
    at += sizeof(v);
  };
  auto get_hex = [&] {
    std::string s(reinterpret_cast<const char*>(d.data() + at), 64);
    at += 64;
    return s;
  };
  uint32_t version = 0;
  get(version);
  QB_CHECK(version == kVersion, "{}: top-K cache version {} (expected {})", path, version, kVersion);
  TopKCache c;
  auto& h = c.header;
  get(h.k);
  get(h.n_vocab);
  get(h.n_windows);
  get(h.n_tokens);
  h.model_sha256 = get_hex();
  h.text_sha256 = get_hex();
  h.settings_sha256 = get_hex();
  QB_CHECK(h.k == e.k, "{}: top-K cache has K = {}, this run asks for K = {}", path, h.k, e.k);
  QB_CHECK(h.n_vocab == e.n_vocab, "{}: top-K cache for n_vocab = {}, model has {}", path, h.n_vocab, e.n_vocab);
  QB_CHECK(h.model_sha256 == e.model_sha256, "{}: top-K cache was made from a different baseline (sha256 {}, this one {})",
           path, h.model_sha256, e.model_sha256);
  QB_CHECK(h.text_sha256 == e.text_sha256, "{}: top-K cache was made from a different text (sha256 {}, this one {})", path,
           h.text_sha256, e.text_sha256);
  QB_CHECK(h.settings_sha256 == e.settings_sha256, "{}: top-K cache was made with different settings (convention, n_ctx, baseline KV cache)",
           path);
  QB_CHECK(h.n_windows == e.n_windows && h.n_tokens == e.n_tokens,
           "{}: top-K cache has {} windows / {} tokens, this run has {} / {}", path, h.n_windows, h.n_tokens, e.n_windows,
           e.n_tokens);
  QB_CHECK(h.k >= 1 && h.k <= h.n_vocab, "{}: top-K cache K = {} outside [1, n_vocab]", path, h.k);
  const size_t expect = kHeaderBytes + (h.n_windows + 1) * 8 + h.n_tokens * record_bytes(h.k);
  QB_CHECK(d.size() == expect, "{}: top-K cache is {} bytes, its header implies {}", path, d.size(), expect);
  c.offsets.resize(h.n_windows + 1);
  for (auto& o : c.offsets) get(o);
  QB_CHECK(c.offsets.front() == 0 && c.offsets.back() == h.n_tokens && std::is_sorted(c.offsets.begin(), c.offsets.end()),
           "{}: top-K cache window offsets are inconsistent", path);
  c.tokens.resize(h.n_tokens);
  for (auto& t : c.tokens) {
    get(t.ref);
    get(t.ref_logprob);
    get(t.topk.rest_logmass);
    t.topk.vocab = h.n_vocab;
    t.topk.ids.resize(h.k);
    t.topk.logprobs.resize(h.k);
    for (auto& id : t.topk.ids) {
      get(id);
      QB_CHECK(id >= 0 && uint64_t(id) < h.n_vocab, "{}: top-K cache token id {} out of range", path, id);
    }
    for (auto& lp : t.topk.logprobs) get(lp);
    QB_CHECK(t.ref >= 0 && uint64_t(t.ref) < h.n_vocab, "{}: top-K cache reference id {} out of range", path, t.ref);
  }
  return c;
}

// ---- evaluation ----------------------------------------------------------------------------------------

namespace {

// Runs `ws` through `be` as one batch (one sequence per window) and returns logits of scored positions.
runtime::Logits run_windows(runtime::Backend& be, std::span<const PplWindow> ws) {
  runtime::Batch batch;
  std::vector<runtime::SeqId> seqs;
  for (const auto& w : ws) {
    const auto s = be.create_sequence(int64_t(w.input.size()));
    seqs.push_back(s);
    const int64_t last = w.first + int64_t(w.targets.size());
    for (size_t p = 0; p < w.input.size(); ++p)
      batch.add(w.input[p], s, int64_t(p), int64_t(p) >= w.first && int64_t(p) < last);
  }
  auto logits = be.forward(batch);
  for (auto s : seqs) be.free_sequence(s);
  return logits;
}

Interval exp_interval(Interval i) {
  i.lo = std::exp(i.lo);
  i.hi = std::exp(i.hi);
  i.method = "exp of " + i.method;
  return i;
}

size_t count_words(const std::string& doc) {
  // lm-eval: len(re.split(r"\s+", doc)) -- leading/trailing whitespace yields empty pieces that count.
  size_t n = 1;
  bool in_ws = false;
  for (unsigned char ch : doc) {
    const bool ws = ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
    if (ws && !in_ws) ++n;
    in_ws = ws;
  }
  return n;
}


// The per-window record of the Result.
nlohmann::json window_record(const PplTokenData& d, size_t w) {
  double nb = 0, nc = 0, kl = 0, kmax = 0;
  const size_t a = d.offsets[w], b = d.offsets[w + 1];
  for (size_t i = a; i < b; ++i) {
    nb += d.nll_base[i];
    nc += d.nll_cand[i];
    const double v = d.exact_kl ? d.kl_exact[i] : d.kl_lumped[i];
    kl += v;
    kmax = std::max(kmax, v);
  }
  const double n = double(b - a);
  return {{"window", w}, {"scored_tokens", b - a}, {"baseline_ppl", std::exp(nb / n)},
          {"candidate_ppl", std::exp(nc / n)}, {"kld_mean", kl / n}, {"kld_max", kmax},
          {"kld_kind", d.exact_kl ? "exact" : "top-K lumped lower bound"}};
}

template <typename T>
std::vector<T> slice(const std::vector<T>& v, size_t a, size_t b) {
  return std::vector<T>(v.begin() + std::ptrdiff_t(a), v.begin() + std::ptrdiff_t(b));
}

// The hook's record: the window record plus every per-token value the aggregates need. "kld" is the KL
// the report's CDF reads (exact when the baseline ran live).
nlohmann::json window_state(const PplTokenData& d, size_t w) {
  const size_t a = d.offsets[w], b = d.offsets[w + 1];
  auto j = window_record(d, w);
  j["kld"] = slice(d.exact_kl ? d.kl_exact : d.kl_lumped, a, b);
  j["nll_base"] = slice(d.nll_base, a, b);
  j["nll_cand"] = slice(d.nll_cand, a, b);
  j["kl_lumped"] = slice(d.kl_lumped, a, b);
  j["kl_gap"] = slice(d.kl_gap, a, b);
  j["delta_p"] = slice(d.delta_p, a, b);
  j["same_top1"] = slice(d.same_top1, a, b);
  return j;
}

std::vector<double> doubles(const nlohmann::json& j, const char* field, size_t n, const std::string& key) {
  QB_CHECK(j.contains(field) && j[field].is_array() && j[field].size() == n,
           "stored perplexity item '{}': field '{}' missing or not {} values", key, field, n);
  std::vector<double> out;
  for (const auto& v : j[field]) out.push_back(v.is_number() ? v.get<double>() : std::nan(""));
  return out;
}

// Appends a stored window's tokens to d (the inverse of window_state).
void restore_window(const nlohmann::json& j, const PplWindow& w, PplTokenData& d, const std::string& key) {
  const size_t n = w.targets.size();
  auto append = [&](std::vector<double>& dst, const char* field) {
    const auto v = doubles(j, field, n, key);
    dst.insert(dst.end(), v.begin(), v.end());
  };
  if (d.exact_kl) append(d.kl_exact, "kld");
  append(d.kl_lumped, "kl_lumped");
  append(d.kl_gap, "kl_gap");
  append(d.nll_base, "nll_base");
  append(d.nll_cand, "nll_cand");
  append(d.delta_p, "delta_p");
  for (double v : doubles(j, "same_top1", n, key)) d.same_top1.push_back(v != 0 ? 1 : 0);
}
}  // namespace

Result evaluate_perplexity(ModelPair& pair, const std::vector<std::string>& documents, const std::string& text_name,
                           const std::string& text_sha256, const PerplexityOptions& o, PplTokenData* data_out) {
  QB_CHECK(o.batch >= 1, "perplexity: batch must be >= 1, got {}", o.batch);
  QB_CHECK(!documents.empty(), "perplexity: no text to evaluate");
  const auto& tok = pair.tokenizer();
  const int64_t n_vocab = pair.baseline().model->spec().n_vocab;
  const size_t k = std::min<size_t>(std::max<size_t>(o.top_k, 1), size_t(n_vocab));

  std::vector<PplWindow> windows;
  size_t n_words = 0, n_bytes = 0;
  for (const auto& doc : documents) {
    n_bytes += doc.size();
    n_words += count_words(doc);
  }
  if (o.convention == PplConvention::LlamaCpp) {
    std::string joined;
    for (const auto& d : documents) joined += d;
    auto toks = tok.encode(joined, /*add_special=*/true, /*parse_special=*/false);
    windows = llamacpp_windows(toks, o.n_ctx, tok.add_bos() ? tok.bos() : -1);
  } else {
    const int32_t prefix = tok.bos() != tokenizer::kNoToken ? tok.bos() : tok.eos();
    QB_CHECK(prefix != tokenizer::kNoToken, "perplexity (rolling): the vocabulary has neither BOS nor EOS for the prefix");
    for (const auto& doc : documents) {
      auto ws = rolling_windows(tok.encode(doc, false, false), prefix, o.n_ctx);
      for (auto& w : ws) windows.push_back(std::move(w));
    }
  }
  const bool truncated = o.max_windows > 0 && int64_t(windows.size()) > o.max_windows;
  if (truncated) windows.resize(size_t(o.max_windows));
  QB_CHECK(!windows.empty(), "perplexity: the text yields no scored tokens");
  for (const auto& w : windows)
    QB_CHECK(int64_t(w.input.size()) <= pair.baseline().model->spec().n_ctx_train || pair.baseline().model->spec().n_ctx_train <= 0,
             "perplexity: window of {} tokens exceeds the model's context {}", w.input.size(),
             pair.baseline().model->spec().n_ctx_train);

  PplTokenData d;
  for (const auto& w : windows) d.offsets.push_back(d.offsets.back() + w.targets.size());
  const size_t n_tokens = d.offsets.back();

  std::string settings = "convention=" + convention_name(o.convention) + ";n_ctx=" + std::to_string(o.n_ctx) +
                               ";k=" + std::to_string(k) + ";windows=" + std::to_string(windows.size());
  // The baseline's logits depend on its KV cache precision too (the default f32 keeps old caches valid).
  if (pair.baseline().kv != runtime::KvType::F32)
    settings += ";baseline_kv=" + std::string(runtime::kv_type_name(pair.baseline().kv));
  TopKCacheHeader hdr;
  hdr.k = uint32_t(k);
  hdr.n_vocab = uint64_t(n_vocab);
  hdr.n_windows = windows.size();
  hdr.n_tokens = n_tokens;
  hdr.model_sha256 = pair.baseline().sha256;
  hdr.text_sha256 = text_sha256;
  hdr.settings_sha256 = sha256_hex(std::span(reinterpret_cast<const uint8_t*>(settings.data()), settings.size()));

  TopKCache cache;
  const bool have_cache = !o.cache_path.empty() && std::ifstream(o.cache_path).good();
  if (have_cache) cache = read_topk_cache(o.cache_path, hdr);  // a stale cache is an error, not silently redone
  else {
    cache.header = hdr;
    cache.offsets = d.offsets;
    cache.tokens.reserve(n_tokens);
  }
  d.from_cache = have_cache;
  d.exact_kl = !have_cache;

  // The Manifest is complete before any forward, so a hook can check it against a stored one.
  Manifest m;
  pair.describe(m);
  m.set("harness.task", "perplexity:" + text_name);
  m.set("harness.task_version", "1 (convention " + convention_name(o.convention) + ")");
  m.set("harness.dataset_sha256", text_sha256);
  m.set("harness.items", std::to_string(windows.size()) + " windows, " + std::to_string(n_tokens) + " scored tokens");
  m.set("harness.shots", "0");
  m.set("harness.prompt_template_hash", "none (raw text)");
  m.set("harness.generation", "none (teacher-forced scoring)");
  m.set("harness.seed", "bootstrap seed " + std::to_string(o.bootstrap.seed) + ", B=" + std::to_string(o.bootstrap.resamples));
  m.set("harness.batch_size", std::to_string(o.batch) + " windows per forward");
  m.set("harness.perplexity_convention",
        o.convention == PplConvention::LlamaCpp
            ? "llama.cpp: chunks of n_ctx=" + std::to_string(o.n_ctx) +
                  (tok.add_bos() ? ", BOS as first token of each chunk"
                                 : ", no BOS (the vocabulary adds none; chunks start with the text's own token)") +
                  ", tokens " +
                  std::to_string(o.n_ctx / 2 + 1) + ".." + std::to_string(o.n_ctx - 1) + " of each chunk scored, stride n_ctx"
            : "lm-eval loglikelihood_rolling: max_length=" + std::to_string(o.n_ctx) +
                  ", prefix token, disjoint prediction windows with full left context, every token scored");
  m.set("harness.kl_baseline", have_cache ? "top-K cache " + o.cache_path + " (K=" + std::to_string(k) + ")"
                                          : "baseline run live (exact KL) and top-K K=" + std::to_string(k));

  const std::string task = "perplexity:" + text_name;
  const std::string misses = "tail behaviour on rare or workload-specific inputs (hence the tail percentiles)";
  std::map<std::string, nlohmann::json> restored;
  if (o.hook && o.hook->begin) restored = o.hook->begin("perplexity", task, m, misses);
  auto wkey = [](size_t w) { return "window:" + std::to_string(w); };

  Progress bar("perplexity " + text_name, int64_t(windows.size()), o.progress);
  for (size_t w0 = 0; w0 < windows.size();) {
    if (auto it = restored.find(wkey(w0)); it != restored.end()) {
      restore_window(it->second, windows[w0], d, it->first);
      if (!have_cache) cache.tokens.resize(d.nll_cand.size());  // placeholders keep cache indices aligned
      ++w0;
      bar.advance(1);
      continue;
    }
    size_t w1 = w0;  // a batch of consecutive windows that still need computing
    while (w1 < windows.size() && w1 - w0 < size_t(o.batch) && !restored.count(wkey(w1))) ++w1;
    std::span<const PplWindow> ws(windows.data() + w0, w1 - w0);
    runtime::Logits base;
    if (!have_cache) base = run_windows(*pair.baseline().backend, ws);
    const auto cand = run_windows(*pair.candidate().backend, ws);
    size_t row = 0;
    for (size_t wi = 0; wi < ws.size(); ++wi) {
      const auto& w = ws[wi];
      for (size_t i = 0; i < w.targets.size(); ++i, ++row) {
        const size_t ref = size_t(w.targets[i]);
        const auto lq = log_softmax(cand.row(row));
        const size_t t = d.nll_cand.size();
        if (!have_cache) {
          const auto lp = log_softmax(base.row(row));
          TopKCacheToken ct{int32_t(ref), lp[ref], truncate_top_k(lp, k)};
          d.kl_exact.push_back(kl_divergence(lp, lq));
          cache.tokens.push_back(std::move(ct));
        }
        const auto& ct = cache.tokens[t];
        QB_CHECK(size_t(ct.ref) == ref, "{}: top-K cache token {} predicts id {}, the text has {}", o.cache_path, t, ct.ref,
                 ref);
        const auto kk = kl_top_k(ct.topk, lq);
        d.kl_lumped.push_back(kk.kl_lumped);
        d.kl_gap.push_back(kk.gap_bound);
        d.nll_base.push_back(-ct.ref_logprob);
        d.nll_cand.push_back(-lq[ref]);
        d.delta_p.push_back(std::exp(lq[ref]) - std::exp(ct.ref_logprob));
        d.same_top1.push_back(argmax(lq) == size_t(ct.topk.ids[0]) ? 1 : 0);
      }
      if (o.hook && o.hook->on_item) o.hook->on_item(wkey(w0 + wi), window_state(d, w0 + wi));
    }
    bar.advance(int64_t(ws.size()));
    w0 = w1;
  }
  bar.finish();
  if (!have_cache && !o.cache_path.empty() && restored.empty()) write_topk_cache(o.cache_path, cache);

  // ---- the Result ----
  Result r("perplexity", task, m);
  r.set_misses(misses);
  const auto& bs = o.bootstrap;
  auto cl = [&](const std::vector<double>& x) { return bootstrap_clustered_mean_ci(x, d.offsets, bs); };

  for (int which = 0; which < 2; ++which) {
    const auto& nll = which == 0 ? d.nll_base : d.nll_cand;
    const std::string who = which == 0 ? "baseline_" : "candidate_";
    const auto ms = mean_stats(nll, bs.level);
    auto ci = cl(nll);
    auto mm = metric(who + "nll", ms.mean, Direction::LowerIsBetter, "mean", "nats/token");
    mm.stderr_ = ms.stderr_;
    mm.interval = ci;
    r.add_metric(mm);
    auto pp = metric(who + "ppl", std::exp(ms.mean), Direction::LowerIsBetter, "exp(mean nll)");
    pp.interval = exp_interval(ci);
    r.add_metric(pp);
    if (o.convention == PplConvention::Rolling && !truncated) {  // word/byte counts need whole documents
      const double sum = ms.mean * double(nll.size());
      r.add_metric(metric(who + "word_perplexity", std::exp(sum / double(n_words)), Direction::LowerIsBetter,
                          "exp(sum nll / words)"));
      r.add_metric(metric(who + "byte_perplexity", std::exp(sum / double(n_bytes)), Direction::LowerIsBetter,
                          "exp(sum nll / bytes)"));
      r.add_metric(metric(who + "bits_per_byte", sum / double(n_bytes) / std::log(2.0), Direction::LowerIsBetter,
                          "sum nll / bytes / ln 2", "bits"));
    }
  }
  {
    std::vector<double> diff(n_tokens);
    for (size_t i = 0; i < n_tokens; ++i) diff[i] = d.nll_cand[i] - d.nll_base[i];
    const auto ms = mean_stats(diff, bs.level);
    auto mr = metric("ln_ppl_ratio", ms.mean, Direction::LowerIsBetter, "mean(nll_cand - nll_base)", "nats/token");
    mr.stderr_ = ms.stderr_;
    mr.interval = cl(diff);
    r.add_metric(mr);
  }
  auto add_kl = [&](const std::string& prefix, const std::vector<double>& kl) {
    const auto s = summarize_kl(kl, bs.level);
    auto mm = metric(prefix + "_mean", s.mean.mean, Direction::LowerIsBetter, "mean", "nats");
    mm.stderr_ = s.mean.stderr_;
    mm.interval = cl(kl);
    r.add_metric(mm);
    r.add_metric(metric(prefix + "_median", s.median, Direction::LowerIsBetter, "median", "nats"));
    r.add_metric(metric(prefix + "_p90", s.p90, Direction::LowerIsBetter, "p90", "nats"));
    r.add_metric(metric(prefix + "_p99", s.p99, Direction::LowerIsBetter, "p99", "nats"));
    r.add_metric(metric(prefix + "_p99.9", s.p999, Direction::LowerIsBetter, "p99.9", "nats"));
    r.add_metric(metric(prefix + "_max", s.max, Direction::LowerIsBetter, "max", "nats"));
  };
  if (d.exact_kl) add_kl("kld", d.kl_exact);
  add_kl("kld_topk_lumped", d.kl_lumped);
  {
    double mg = 0, xg = 0;
    for (double g : d.kl_gap) mg += g, xg = std::max(xg, g);
    mg /= double(n_tokens);
    r.add_metric(metric("kld_topk_k", double(k), Direction::Neither, "setting"));
    r.add_metric(metric("kld_topk_gap_bound_mean", mg, Direction::Neither,
                        "mean; true mean KL lies in [kld_topk_lumped_mean, + this]", "nats"));
    r.add_metric(metric("kld_topk_gap_bound_max", xg, Direction::Neither, "max per token", "nats"));
  }
  {
    const auto s = summarize_delta_p(d.delta_p, bs.level);
    auto mm = metric("delta_p_mean", s.mean.mean, Direction::Neither, "mean", "probability");
    mm.stderr_ = s.mean.stderr_;
    mm.interval = cl(d.delta_p);
    r.add_metric(mm);
    r.add_metric(metric("delta_p_rms", s.rms, Direction::LowerIsBetter, "rms", "probability"));
    r.add_metric(metric("delta_p_min", s.min, Direction::Neither, "min", "probability"));
    r.add_metric(metric("delta_p_max", s.max, Direction::Neither, "max", "probability"));
    const auto& lv = delta_p_percentile_levels();
    for (size_t i = 0; i < lv.size(); ++i) {
      std::string q = fmt::format("{:g}", lv[i]);
      r.add_metric(metric("delta_p_p" + q, s.percentiles[i], Direction::Neither, "p" + q, "probability"));
    }
  }
  {
    const auto p = same_top1_rate(d.same_top1, bs.level);
    auto mm = metric("same_top1", p.rate, Direction::HigherIsBetter, "proportion");
    std::vector<double> st(d.same_top1.begin(), d.same_top1.end());
    mm.interval = cl(st);
    r.add_metric(mm);
  }
  for (size_t w = 0; w < windows.size(); ++w) r.add_item(window_record(d, w));
  if (data_out) *data_out = std::move(d);
  return r;
}

}  // namespace qb::eval
