// See cuda_backend.h. Host side of the CUDA forward pass: weight upload, sequence caches, batch
// validation (the same rules and messages as the CPU backend, checked before any cache changes),
// rope angles (computed on the host with the reference's cpu::rope_angles, so both backends rotate
// by identical f32 angles) and the launch sequence. One stream; forward() returns after the logits
// are copied back.
#include "quantbench/runtime/cuda/cuda_backend.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "quantbench/core/dtype.h"
#include "quantbench/core/error.h"
#include "quantbench/quant/qformat/ggml_blocks.h"
#include "quantbench/runtime/cpu/rope.h"
#include "quantbench/runtime/cuda/forward_kernels.h"

namespace qb::runtime::cuda {

using model::ModelSpec;

namespace {

void cuda_ok(cudaError_t e, const char* what) {
  if (e != cudaSuccess) fail("cuda: {}: {}", what, cudaGetErrorString(e));
}
void blas_ok(cublasStatus_t e, const char* what) {
  if (e != CUBLAS_STATUS_SUCCESS) fail("cublas: {}: status {}", what, int(e));
}

// Owning device allocation.
struct DevBuf {
  void* p = nullptr;
  size_t bytes = 0;
  DevBuf() = default;
  explicit DevBuf(size_t n) : bytes(n) {
    if (n) cuda_ok(cudaMalloc(&p, n), "cudaMalloc");
  }
  DevBuf(DevBuf&& o) noexcept : p(o.p), bytes(o.bytes) { o.p = nullptr; o.bytes = 0; }
  DevBuf& operator=(DevBuf&& o) noexcept {
    if (this != &o) { reset(); p = o.p; bytes = o.bytes; o.p = nullptr; o.bytes = 0; }
    return *this;
  }
  ~DevBuf() { reset(); }
  void reset() { if (p) cudaFree(p); p = nullptr; bytes = 0; }
  template <class T> T* as() const { return static_cast<T*>(p); }
  // Grows (contents discarded) to at least n bytes.
  void ensure(size_t n) { if (bytes < n) *this = DevBuf(std::max(n, bytes * 3 / 2)); }
};

DevBuf upload_vec(const std::vector<float>& v) {
  DevBuf b(v.size() * sizeof(float));
  if (!v.empty()) cuda_ok(cudaMemcpy(b.p, v.data(), b.bytes, cudaMemcpyHostToDevice), "upload");
  return b;
}

bool gpu_supports(formats::GgmlType t) { return qformat::can_dequantize(t); }

std::string supported_list() {
  std::string s;
  for (auto t : {formats::GgmlType::F32, formats::GgmlType::F16, formats::GgmlType::BF16, formats::GgmlType::Q4_0,
                 formats::GgmlType::Q4_1, formats::GgmlType::Q5_0, formats::GgmlType::Q5_1, formats::GgmlType::Q8_0,
                 formats::GgmlType::Q2_K, formats::GgmlType::Q3_K, formats::GgmlType::Q4_K, formats::GgmlType::Q5_K,
                 formats::GgmlType::Q6_K})
    if (gpu_supports(t)) s += (s.empty() ? "" : ", ") + std::string(formats::ggml_type_name(t));
  return s;
}

}  // namespace

// A dense row-major [n_out][n_in] matrix on the device in the backend's DenseType.
struct DenseMatrix {
  DevBuf data;
  int64_t n_out = 0, n_in = 0;
};

struct CudaBackend::Impl {
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  DenseType dense = DenseType::BF16;
  std::string device_name;

  struct Layer {
    DevBuf attn_norm, ffn_norm, post_attn_norm, post_ffn_norm, q_norm, k_norm, bias_qkv;
    DenseMatrix wqkv, wo, wgu, wdown;
  };
  std::vector<Layer> layers;
  DevBuf output_norm;
  DenseMatrix output;

  struct Sequence {
    int64_t max_len = 0, length = 0, capacity = 0;
    std::vector<DevBuf> k, v;  // per layer: capacity x kv_dim f16
  };
  std::map<SeqId, Sequence> seqs;
  SeqId next_id = 0;

  // Captured forward passes for small batches, keyed by (tokens, logits rows); valid while the
  // buffers they were captured with stay where they are.
  struct Graph {
    cudaGraphExec_t exec = nullptr;
    std::vector<const void*> addr;
  };
  std::map<std::pair<int, int>, Graph> graphs;

  // Scratch, grown to the largest batch seen.
  DevBuf x, h, qkv, att, o, gu, g, xb, logits, tabs, blas_ws;

  ~Impl() {
    for (auto& [k, g] : graphs)
      if (g.exec) cudaGraphExecDestroy(g.exec);
    seqs.clear();
    if (blas) cublasDestroy(blas);
    if (stream) cudaStreamDestroy(stream);
  }

  size_t elem() const { return dense == DenseType::BF16 ? 2 : 4; }

  // Dequantizes and uploads matrices stacked along n_out (q|k|v, gate|up) as one dense matrix.
  DenseMatrix upload_stacked(std::initializer_list<const model::WeightMatrix*> parts, const std::string& what) {
    DenseMatrix m;
    m.n_in = (*parts.begin())->n_in;
    for (const auto* w : parts) {
      QB_CHECK(w->n_in == m.n_in, "cuda upload {}: inner dimensions differ", what);
      QB_CHECK(gpu_supports(w->type), "cuda backend: weight {} has type {}, which has no GPU path (supported: {})",
               what, formats::ggml_type_name(w->type), supported_list());
      m.n_out += w->n_out;
    }
    m.data = DevBuf(size_t(m.n_out * m.n_in) * elem());
    std::vector<float> row(size_t(m.n_in));
    std::vector<uint8_t> host(size_t(m.n_in) * elem() * 256);
    int64_t out_row = 0;
    for (const auto* w : parts) {
      for (int64_t r0 = 0; r0 < w->n_out; r0 += 256) {
        const int64_t nr = std::min<int64_t>(256, w->n_out - r0);
        for (int64_t r = 0; r < nr; ++r) {
          qformat::dequantize_row(w->type, w->data + size_t(r0 + r) * w->row_bytes, row.data(), m.n_in);
          if (dense == DenseType::BF16) {
            auto* dst = reinterpret_cast<uint16_t*>(host.data()) + r * m.n_in;
            for (int64_t i = 0; i < m.n_in; ++i) dst[i] = ::qb::f32_to_bf16(row[size_t(i)]);
          } else {
            std::copy(row.begin(), row.end(), reinterpret_cast<float*>(host.data()) + r * m.n_in);
          }
        }
        cuda_ok(cudaMemcpy(m.data.as<uint8_t>() + size_t((out_row + r0) * m.n_in) * elem(), host.data(),
                           size_t(nr * m.n_in) * elem(), cudaMemcpyHostToDevice),
                "weight upload");
      }
      out_row += w->n_out;
    }
    return m;
  }

  // y[T][n_out] (f32) = x[T][n_in] (f32) W^T. BF16 weights: x is rounded to bf16 first.
  void gemm(const DenseMatrix& w, const float* x, int T, float* y) {
    const float one = 1.0f, zero = 0.0f;
    const void* b = x;
    cudaDataType_t ab = CUDA_R_32F;
    if (dense == DenseType::BF16) {
      xb.ensure(size_t(T * w.n_in) * 2);
      f32_to_bf16(x, xb.as<uint16_t>(), int64_t(T) * w.n_in, stream);
      b = xb.p;
      ab = CUDA_R_16BF;
    }
    // Column-major view: W is n_in x n_out (ld n_in); Y^T (n_out x T) = W^T X^T.
    blas_ok(cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, int(w.n_out), T, int(w.n_in), &one, w.data.p, ab,
                         int(w.n_in), b, ab, int(w.n_in), &zero, y, CUDA_R_32F, int(w.n_out),
                         dense == DenseType::F32 ? CUBLAS_COMPUTE_32F_PEDANTIC : CUBLAS_COMPUTE_32F,
                         CUBLAS_GEMM_DEFAULT),
            "gemm");
  }
};

bool cuda_device_available() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

CudaBackend::CudaBackend(std::shared_ptr<const model::Model> model, CudaBackendOptions options)
    : model_(std::move(model)), options_(options), impl_(std::make_unique<Impl>()) {
  QB_CHECK(model_ != nullptr, "CudaBackend: no model");
  QB_CHECK(cuda_device_available(), "cuda backend: no CUDA device is available");
  const ModelSpec& sp = model_->spec();
  const model::Model& m = *model_;
  QB_CHECK(sp.head_dim_k <= kMaxHeadDim && sp.head_dim_v <= kMaxHeadDim,
           "cuda backend: head dimension {} / {} exceeds the attention kernel's {}", sp.head_dim_k, sp.head_dim_v,
           kMaxHeadDim);
  QB_CHECK(sp.n_head % sp.n_head_kv == 0, "cuda backend: n_head {} is not a multiple of n_head_kv {}", sp.n_head,
           sp.n_head_kv);
  Impl& I = *impl_;
  I.dense = options.dense;
  cuda_ok(cudaSetDevice(options.device), "cudaSetDevice");
  cudaDeviceProp prop{};
  cuda_ok(cudaGetDeviceProperties(&prop, options.device), "cudaGetDeviceProperties");
  I.device_name = prop.name;
  cuda_ok(cudaStreamCreateWithFlags(&I.stream, cudaStreamNonBlocking), "cudaStreamCreate");
  blas_ok(cublasCreate(&I.blas), "cublasCreate");
  blas_ok(cublasSetStream(I.blas, I.stream), "cublasSetStream");
  // An explicit workspace (after SetStream, which resets it) so captured GEMMs never allocate.
  I.blas_ws = DevBuf(size_t(32) << 20);
  blas_ok(cublasSetWorkspace(I.blas, I.blas_ws.p, I.blas_ws.bytes), "cublasSetWorkspace");
  if (I.dense == DenseType::F32) blas_ok(cublasSetMathMode(I.blas, CUBLAS_PEDANTIC_MATH), "cublasSetMathMode");

  for (int64_t il = 0; il < sp.n_layer; ++il) {
    const model::LayerWeights& w = m.layers[size_t(il)];
    Impl::Layer L;
    const std::string p = fmt::format("blk.{}.", il);
    L.attn_norm = upload_vec(w.attn_norm);
    L.ffn_norm = upload_vec(w.ffn_norm);
    if (sp.post_norms) {
      L.post_attn_norm = upload_vec(w.post_attn_norm);
      L.post_ffn_norm = upload_vec(w.post_ffn_norm);
    }
    if (sp.qk_norm) {
      L.q_norm = upload_vec(w.q_norm);
      L.k_norm = upload_vec(w.k_norm);
    }
    if (sp.qkv_bias) {
      std::vector<float> b(w.bq);
      b.insert(b.end(), w.bk.begin(), w.bk.end());
      b.insert(b.end(), w.bv.begin(), w.bv.end());
      L.bias_qkv = upload_vec(b);
    }
    L.wqkv = I.upload_stacked({&w.wq, &w.wk, &w.wv}, p + "attn_qkv");
    L.wo = I.upload_stacked({&w.wo}, p + "attn_output");
    L.wgu = I.upload_stacked({&w.w_gate, &w.w_up}, p + "ffn_gate_up");
    L.wdown = I.upload_stacked({&w.w_down}, p + "ffn_down");
    I.layers.push_back(std::move(L));
  }
  I.output_norm = upload_vec(m.output_norm);
  I.output = I.upload_stacked({&m.output}, "output");
}

CudaBackend::~CudaBackend() {
  if (impl_ && impl_->stream) cudaStreamSynchronize(impl_->stream);
}

size_t CudaBackend::weight_bytes() const {
  size_t n = impl_->output.data.bytes;
  for (const auto& L : impl_->layers) n += L.wqkv.data.bytes + L.wo.data.bytes + L.wgu.data.bytes + L.wdown.data.bytes;
  return n;
}

std::string CudaBackend::describe() const {
  const model::Model& m = *model_;
  std::set<formats::GgmlType> types;
  types.insert(m.output.type);
  for (const auto& l : m.layers)
    for (const auto* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) types.insert(w->type);
  const char* dn = impl_->dense == DenseType::BF16 ? "bf16" : "f32";
  std::string paths;
  for (auto t : types)
    paths += fmt::format("{}{} -> dequantized on the host to {} (cuBLAS GEMM{})", paths.empty() ? "" : "; ",
                         formats::ggml_type_name(t), dn,
                         impl_->dense == DenseType::BF16 ? ", activations rounded to bf16, f32 accumulation"
                                                         : ", f32 pedantic, no TF32");
  return fmt::format("cuda on {}; matmul: {}; q|k|v and gate|up fused; kv cache f16; norms (double sums), rope "
                     "(host f32 angles), attention (f32 online softmax), activations in f32; embeddings "
                     "dequantized on the host per token; weights: {}",
                     impl_->device_name, paths, m.describe_weight_types());
}

SeqId CudaBackend::create_sequence(int64_t max_len) {
  const int64_t ctx = spec().n_ctx_train;
  if (max_len <= 0) max_len = ctx;
  QB_CHECK(max_len <= ctx, "create_sequence: max_len {} exceeds the model's context length {}", max_len, ctx);
  Impl::Sequence s;
  s.max_len = max_len;
  s.k.resize(size_t(spec().n_layer));
  s.v.resize(size_t(spec().n_layer));
  const SeqId id = impl_->next_id++;
  impl_->seqs.emplace(id, std::move(s));
  return id;
}

void CudaBackend::free_sequence(SeqId seq) {
  QB_CHECK(impl_->seqs.count(seq), "unknown sequence id {}", seq);
  cuda_ok(cudaStreamSynchronize(impl_->stream), "sync");
  impl_->seqs.erase(seq);
}

int64_t CudaBackend::sequence_length(SeqId seq) const {
  auto it = impl_->seqs.find(seq);
  QB_CHECK(it != impl_->seqs.end(), "unknown sequence id {}", seq);
  return it->second.length;
}

void CudaBackend::truncate_sequence(SeqId seq, int64_t new_length) {
  auto it = impl_->seqs.find(seq);
  QB_CHECK(it != impl_->seqs.end(), "unknown sequence id {}", seq);
  QB_CHECK(new_length >= 0 && new_length <= it->second.length, "truncate_sequence: length {} is outside 0..{}",
           new_length, it->second.length);
  it->second.length = new_length;
}

Logits CudaBackend::forward(const Batch& batch) {
  const ModelSpec& sp = spec();
  const model::Model& m = *model_;
  Impl& I = *impl_;
  const int T = int(batch.size());
  Logits result;
  result.n_vocab = sp.n_vocab;
  if (T == 0) return result;
  QB_CHECK(batch.size() < (1u << 30), "forward: batch of {} tokens is too large", batch.size());

  // Validate everything before touching a cache (same rules and messages as the CPU backend).
  std::map<SeqId, int64_t> next_pos;
  for (const auto& bt : batch.tokens) {
    auto sit = I.seqs.find(bt.seq);
    QB_CHECK(sit != I.seqs.end(), "unknown sequence id {}", bt.seq);
    auto [it, fresh] = next_pos.try_emplace(bt.seq, sit->second.length);
    QB_CHECK(bt.token >= 0 && bt.token < sp.n_vocab, "forward: token id {} is outside the vocabulary (0..{})",
             bt.token, sp.n_vocab - 1);
    QB_CHECK(bt.pos == it->second, "forward: sequence {} expects position {}, got {}", bt.seq, it->second, bt.pos);
    QB_CHECK(bt.pos < sit->second.max_len, "forward: sequence {} position {} exceeds its maximum length {}", bt.seq,
             bt.pos, sit->second.max_len);
    ++it->second;
  }
  const int64_t kvk = sp.kv_dim_k(), kvv = sp.kv_dim_v();
  // Grow caches (capacity doubles; existing positions are copied).
  for (const auto& [id, end] : next_pos) {
    Impl::Sequence& s = I.seqs.at(id);
    if (end <= s.capacity) continue;
    const int64_t cap = std::min(s.max_len, std::max<int64_t>({end, 2 * s.capacity, 64}));
    for (int64_t il = 0; il < sp.n_layer; ++il) {
      DevBuf nk(size_t(cap * kvk) * 2), nv(size_t(cap * kvv) * 2);
      if (s.length > 0) {
        cuda_ok(cudaMemcpyAsync(nk.p, s.k[size_t(il)].p, size_t(s.length * kvk) * 2, cudaMemcpyDeviceToDevice,
                                I.stream), "cache copy");
        cuda_ok(cudaMemcpyAsync(nv.p, s.v[size_t(il)].p, size_t(s.length * kvv) * 2, cudaMemcpyDeviceToDevice,
                                I.stream), "cache copy");
      }
      cuda_ok(cudaStreamSynchronize(I.stream), "sync");
      s.k[size_t(il)] = std::move(nk);
      s.v[size_t(il)] = std::move(nv);
    }
    s.capacity = cap;
  }

  const int64_t d = sp.n_embd, qd = sp.q_dim(), ad = sp.n_head * sp.head_dim_v, ff = sp.n_ff;
  const int64_t nqkv = qd + kvk + kvv;
  const int64_t half = sp.n_rot / 2;

  // Host-side per-token tables: embeddings, rope angles (global and sliding-window), positions,
  // cache pointers per layer. One upload.
  std::vector<float> emb(size_t(T * d));
  for (int t = 0; t < T; ++t) {
    float* e = emb.data() + t * d;
    m.embedding_row(batch.tokens[size_t(t)].token, e);
    if (sp.embd_scale != 1.0f)
      for (int64_t i = 0; i < d; ++i) e[i] *= sp.embd_scale;
  }
  const bool any_swa = std::find(sp.layer_swa.begin(), sp.layer_swa.end(), true) != sp.layer_swa.end();
  const int n_rope = any_swa ? 2 : 1;
  std::vector<float> rope(size_t(n_rope * 2 * T * half));
  for (int variant = 0; variant < n_rope; ++variant) {
    cpu::RopeParams rp;
    rp.style = sp.rope_style;
    rp.n_rot = sp.n_rot;
    rp.theta = variant ? sp.rope_theta_swa : sp.rope_theta;
    rp.position_scale = variant ? 1.0 : sp.rope_position_scale;
    rp.freq_factors = m.rope_freqs.empty() ? nullptr : m.rope_freqs.data();
    float* c = rope.data() + size_t(variant * 2 * T * half);
    for (int t = 0; t < T; ++t) cpu::rope_angles(rp, batch.tokens[size_t(t)].pos, c + t * half, c + (T + t) * half);
  }
  std::vector<int64_t> pos(static_cast<size_t>(T));
  for (int t = 0; t < T; ++t) pos[size_t(t)] = batch.tokens[size_t(t)].pos;
  std::vector<void*> ptrs(size_t(2 * sp.n_layer * T));
  for (int64_t il = 0; il < sp.n_layer; ++il)
    for (int t = 0; t < T; ++t) {
      const Impl::Sequence& s = I.seqs.at(batch.tokens[size_t(t)].seq);
      ptrs[size_t((2 * il) * T + t)] = s.k[size_t(il)].p;
      ptrs[size_t((2 * il + 1) * T + t)] = s.v[size_t(il)].p;
    }
  for (size_t t = 0; t < batch.size(); ++t)
    if (batch.tokens[t].want_logits) result.batch_index.push_back(t);
  const int R = int(result.rows());
  std::vector<int32_t> rows(result.batch_index.begin(), result.batch_index.end());

  // Table layout in one device buffer: ptrs | pos | rows | rope | emb (8-byte aligned pieces).
  const size_t o_ptr = 0, o_pos = o_ptr + ptrs.size() * 8, o_rows = o_pos + pos.size() * 8,
               o_rope = o_rows + ((rows.size() * 4 + 7) / 8) * 8, o_emb = o_rope + ((rope.size() * 4 + 7) / 8) * 8,
               total = o_emb + emb.size() * 4;
  std::vector<uint8_t> tab(total);
  std::memcpy(tab.data() + o_ptr, ptrs.data(), ptrs.size() * 8);
  std::memcpy(tab.data() + o_pos, pos.data(), pos.size() * 8);
  if (!rows.empty()) std::memcpy(tab.data() + o_rows, rows.data(), rows.size() * 4);
  std::memcpy(tab.data() + o_rope, rope.data(), rope.size() * 4);
  std::memcpy(tab.data() + o_emb, emb.data(), emb.size() * 4);
  I.tabs.ensure(total);
  cuda_ok(cudaMemcpyAsync(I.tabs.p, tab.data(), total, cudaMemcpyHostToDevice, I.stream), "table upload");
  uint8_t* dt = I.tabs.as<uint8_t>();
  void* const* d_ptrs = reinterpret_cast<void* const*>(dt + o_ptr);
  const int64_t* d_pos = reinterpret_cast<const int64_t*>(dt + o_pos);
  const int32_t* d_rows = reinterpret_cast<const int32_t*>(dt + o_rows);
  const float* d_rope = reinterpret_cast<const float*>(dt + o_rope);

  I.x.ensure(size_t(T * d) * 4);
  I.h.ensure(size_t(T * d) * 4);
  I.qkv.ensure(size_t(T * nqkv) * 4);
  I.att.ensure(size_t(T * ad) * 4);
  I.o.ensure(size_t(T * d) * 4);
  I.gu.ensure(size_t(T * 2 * ff) * 4);
  I.g.ensure(size_t(T * ff) * 4);
  float* x = I.x.as<float>();
  float* h = I.h.as<float>();
  float* qkv = I.qkv.as<float>();
  float* att = I.att.as<float>();
  float* o = I.o.as<float>();
  // Everything from here to the logits is a pure function of (T, R, buffer addresses): the per-step
  // data (tokens, positions, cache pointers, angles) lives in the table buffer. So a decode-sized batch
  // is captured once as a CUDA graph and replayed, which removes the ~15 launches per layer.
  cudaStream_t st = I.stream;
  I.xb.ensure(size_t(T) * size_t(std::max({d, ad, ff})) * 2);
  if (R > 0) I.logits.ensure(size_t(R) * size_t(sp.n_vocab) * 4);
  auto enqueue = [&] {
    cuda_ok(cudaMemcpyAsync(x, dt + o_emb, size_t(T * d) * 4, cudaMemcpyDeviceToDevice, I.stream), "embed");

    for (int64_t il = 0; il < sp.n_layer; ++il) {
      const Impl::Layer& L = I.layers[size_t(il)];
      const bool swa = sp.layer_swa[size_t(il)];
      rmsnorm_rows(x, h, L.attn_norm.as<float>(), int(d), T, 1, d, d, sp.rms_eps, nullptr, st);
      I.gemm(L.wqkv, h, T, qkv);
      if (sp.qkv_bias) add_bias(qkv, L.bias_qkv.as<float>(), int(nqkv), T, st);
      if (sp.qk_norm) {
        rmsnorm_rows(qkv, qkv, L.q_norm.as<float>(), int(sp.head_dim_k), int(T * sp.n_head), int(sp.n_head), nqkv,
                     nqkv, sp.rms_eps, nullptr, st);
        rmsnorm_rows(qkv + qd, qkv + qd, L.k_norm.as<float>(), int(sp.head_dim_k), int(T * sp.n_head_kv),
                     int(sp.n_head_kv), nqkv, nqkv, sp.rms_eps, nullptr, st);
      }
      const float* rc = d_rope + size_t((swa && any_swa ? 1 : 0) * 2 * T * half);
      RopeKvArgs ra;
      ra.qkv = qkv;
      ra.qkv_stride = nqkv;
      ra.T = T;
      ra.n_head = int(sp.n_head);
      ra.n_head_kv = int(sp.n_head_kv);
      ra.hd_k = int(sp.head_dim_k);
      ra.hd_v = int(sp.head_dim_v);
      ra.n_rot = int(sp.n_rot);
      ra.neox = sp.rope_style == model::RopeStyle::Neox;
      ra.cos = rc;
      ra.sin = rc + T * half;
      ra.pos = d_pos;
      ra.k_cache = reinterpret_cast<uint16_t* const*>(d_ptrs + (2 * il) * T);
      ra.v_cache = reinterpret_cast<uint16_t* const*>(d_ptrs + (2 * il + 1) * T);
      rope_and_store_kv(ra, st);

      AttentionArgs aa;
      aa.q = qkv;
      aa.q_stride = nqkv;
      aa.out = att;
      aa.T = T;
      aa.n_head = int(sp.n_head);
      aa.n_head_kv = int(sp.n_head_kv);
      aa.hd_k = int(sp.head_dim_k);
      aa.hd_v = int(sp.head_dim_v);
      aa.pos = d_pos;
      aa.k_cache = ra.k_cache;
      aa.v_cache = ra.v_cache;
      aa.scale = sp.attn_scale;
      aa.softcap = sp.attn_softcap;
      aa.window = swa ? sp.sliding_window : 0;
      attention(aa, st);

      I.gemm(L.wo, att, T, o);
      if (sp.post_norms) rmsnorm_rows(o, o, L.post_attn_norm.as<float>(), int(d), T, 1, d, d, sp.rms_eps, nullptr, st);
      add_inplace(x, o, int64_t(T) * d, st);
      rmsnorm_rows(x, h, L.ffn_norm.as<float>(), int(d), T, 1, d, d, sp.rms_eps, nullptr, st);
      I.gemm(L.wgu, h, T, I.gu.as<float>());
      gated_act(I.gu.as<float>(), I.g.as<float>(), int(ff), T, sp.activation == model::Activation::SiLU ? 0 : 1, st);
      I.gemm(L.wdown, I.g.as<float>(), T, o);
      if (sp.post_norms) rmsnorm_rows(o, o, L.post_ffn_norm.as<float>(), int(d), T, 1, d, d, sp.rms_eps, nullptr, st);
      add_inplace(x, o, int64_t(T) * d, st);
    }

    if (R > 0) {
      rmsnorm_rows(x, h, I.output_norm.as<float>(), int(d), R, 1, d, d, sp.rms_eps, d_rows, st);
      I.gemm(I.output, h, R, I.logits.as<float>());
      if (sp.final_softcap > 0) softcap_inplace(I.logits.as<float>(), int64_t(R) * sp.n_vocab, sp.final_softcap, st);
    }
  };
  const bool graphable = options_.use_graphs && T <= 16;
  if (graphable) {
    const std::vector<const void*> addr = {I.tabs.p, I.x.p, I.h.p, I.qkv.p, I.att.p, I.o.p,
                                           I.gu.p,   I.g.p, I.xb.p, I.logits.p};
    Impl::Graph& gr = I.graphs[{T, R}];
    if (!gr.exec || gr.addr != addr) {
      if (gr.exec) cudaGraphExecDestroy(gr.exec);
      gr.exec = nullptr;
      cuda_ok(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal), "begin capture");
      try {
        enqueue();
      } catch (...) {
        cudaGraph_t g = nullptr;
        cudaStreamEndCapture(st, &g);
        if (g) cudaGraphDestroy(g);
        throw;
      }
      cudaGraph_t g = nullptr;
      cuda_ok(cudaStreamEndCapture(st, &g), "end capture");
      const cudaError_t e = cudaGraphInstantiate(&gr.exec, g, 0);
      cudaGraphDestroy(g);
      cuda_ok(e, "graph instantiate");
      gr.addr = addr;
    }
    cuda_ok(cudaGraphLaunch(gr.exec, st), "graph launch");
  } else {
    enqueue();
  }
  if (R > 0) {
    result.data.resize(size_t(R) * size_t(sp.n_vocab));
    cuda_ok(cudaMemcpyAsync(result.data.data(), I.logits.p, result.data.size() * 4, cudaMemcpyDeviceToHost, st),
            "logits download");
  }
  cuda_ok(cudaStreamSynchronize(st), "forward");
  for (const auto& [id, end] : next_pos) I.seqs.at(id).length = end;
  return result;
}

}  // namespace qb::runtime::cuda
