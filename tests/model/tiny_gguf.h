// A minimal GGUF v3 byte builder for tests: metadata (u32, f32, string) and F32 tensors, written to
// a temporary file. It lets tests make small models with deliberately impossible shapes or values
// without depending on the GGUF writer or on Python at test time.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace qb::test {

class TinyGguf {
 public:
  void u32(const std::string& key, uint32_t v) { kv_.push_back({key, 4, pack(v)}); }
  void f32(const std::string& key, float v) { kv_.push_back({key, 6, pack(v)}); }
  void str(const std::string& key, const std::string& v) {
    std::string b = pack(uint64_t(v.size())) + v;
    kv_.push_back({key, 8, b});
  }
  // shape in ggml order (shape[0] contiguous)
  void tensor(const std::string& name, std::vector<int64_t> shape, std::vector<float> values) {
    tensors_.push_back({name, std::move(shape), std::move(values)});
  }
  void remove_tensor(const std::string& name) {
    std::erase_if(tensors_, [&](const T& t) { return t.name == name; });
  }
  std::vector<float>* values(const std::string& name) {
    for (auto& t : tensors_)
      if (t.name == name) return &t.values;
    return nullptr;
  }

  // Writes the file and returns its path (unique per call within a test process).
  std::string write(const std::string& stem) const {
    std::string out = pack(uint32_t(0x46554747)) + pack(uint32_t(3)) + pack(uint64_t(tensors_.size())) +
                      pack(uint64_t(kv_.size()));
    for (const auto& k : kv_) out += pack(uint64_t(k.key.size())) + k.key + pack(k.type) + k.bytes;
    uint64_t off = 0;
    std::vector<uint64_t> offs;
    for (const auto& t : tensors_) {
      out += pack(uint64_t(t.name.size())) + t.name + pack(uint32_t(t.shape.size()));
      for (auto d : t.shape) out += pack(uint64_t(d));
      out += pack(uint32_t(0)) + pack(off);
      offs.push_back(off);
      off += (t.values.size() * 4 + 31) / 32 * 32;
    }
    out.resize((out.size() + 31) / 32 * 32, '\0');
    for (size_t i = 0; i < tensors_.size(); ++i) {
      std::string data(reinterpret_cast<const char*>(tensors_[i].values.data()), tensors_[i].values.size() * 4);
      data.resize((data.size() + 31) / 32 * 32, '\0');
      out += data;
    }
    static int counter = 0;
    auto path = std::filesystem::temp_directory_path() /
                ("qb_" + stem + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + ".gguf");
    std::ofstream(path, std::ios::binary).write(out.data(), std::streamsize(out.size()));
    return path.string();
  }

 private:
  struct KV {
    std::string key;
    uint32_t type;
    std::string bytes;
  };
  struct T {
    std::string name;
    std::vector<int64_t> shape;
    std::vector<float> values;
  };
  template <typename V>
  static std::string pack(V v) {
    std::string s(sizeof(V), '\0');
    std::memcpy(s.data(), &v, sizeof(V));
    return s;
  }
  std::vector<KV> kv_;
  std::vector<T> tensors_;
};

// A small random llama-architecture model (valid unless the caller breaks it).
inline TinyGguf tiny_llama(int64_t d = 16, int64_t n_head = 4, int64_t n_head_kv = 2, int64_t ff = 24,
                           int64_t vocab = 32, int64_t layers = 2) {
  TinyGguf g;
  g.str("general.architecture", "llama");
  g.u32("llama.embedding_length", uint32_t(d));
  g.u32("llama.block_count", uint32_t(layers));
  g.u32("llama.feed_forward_length", uint32_t(ff));
  g.u32("llama.attention.head_count", uint32_t(n_head));
  g.u32("llama.attention.head_count_kv", uint32_t(n_head_kv));
  g.u32("llama.context_length", 64);
  g.f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  uint64_t state = 12345;
  auto rnd = [&](size_t n, float scale) {
    std::vector<float> v(n);
    for (auto& x : v) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      x = scale * (float(int64_t(state >> 40) % 2001 - 1000) / 1000.0f);
    }
    return v;
  };
  const int64_t hd = d / n_head;
  g.tensor("token_embd.weight", {d, vocab}, rnd(size_t(d * vocab), 1.0f));
  g.tensor("output_norm.weight", {d}, rnd(size_t(d), 1.0f));
  for (int64_t l = 0; l < layers; ++l) {
    auto n = [&](const char* s) { return "blk." + std::to_string(l) + "." + s; };
    g.tensor(n("attn_norm.weight"), {d}, rnd(size_t(d), 1.0f));
    g.tensor(n("ffn_norm.weight"), {d}, rnd(size_t(d), 1.0f));
    g.tensor(n("attn_q.weight"), {d, n_head * hd}, rnd(size_t(d * n_head * hd), 0.3f));
    g.tensor(n("attn_k.weight"), {d, n_head_kv * hd}, rnd(size_t(d * n_head_kv * hd), 0.3f));
    g.tensor(n("attn_v.weight"), {d, n_head_kv * hd}, rnd(size_t(d * n_head_kv * hd), 0.3f));
    g.tensor(n("attn_output.weight"), {n_head * hd, d}, rnd(size_t(d * n_head * hd), 0.3f));
    g.tensor(n("ffn_gate.weight"), {d, ff}, rnd(size_t(d * ff), 0.3f));
    g.tensor(n("ffn_up.weight"), {d, ff}, rnd(size_t(d * ff), 0.3f));
    g.tensor(n("ffn_down.weight"), {ff, d}, rnd(size_t(d * ff), 0.3f));
  }
  return g;
}

}  // namespace qb::test
