// See cuda_backend_impl.h. CudaBackend::Impl's weight upload: a model's matrices (packed for qgemv,
// dense in 16 or 32 bits, or W8A8 codes and scales) and a synthetic model's random ones.
#include <cmath>
#include <limits>
#include <random>

#include "quantbench/core/dtype.h"
#include "quantbench/quant/qformat/ggml_blocks.h"
#include "quantbench/quant/qformat/quantized_tensor.h"
#include "quantbench/runtime/cpu/matmul_w8a8.h"
#include "quantbench/runtime/cuda/cuda_backend_impl.h"
#include "quantbench/runtime/cuda/probes.h"

namespace qb::runtime::cuda {

namespace {

using formats::GgmlType;

void dequantize_any_row(const model::WeightMatrix& w, int64_t r, float* out) {
  if (w.quantized) quant::dequantize_row(*w.quantized, r, out);
  else qformat::dequantize_row(w.type, w.data + size_t(r) * w.row_bytes, out, w.n_in);
}

}  // namespace

bool CudaBackend::Impl::dense16_rows(std::initializer_list<const model::WeightMatrix*> parts,
                                     const std::vector<PartPlan>& plans, int64_t n_in, std::vector<uint16_t>& out) {
  bool f16 = true;
  for (const auto& pl : plans) f16 = f16 && !pl.path.starts_with("bf16 ");
  size_t total = 0;
  for (const auto* w : parts) total += size_t(w->n_out) * size_t(n_in);
  for (int pass = 0; pass < 2; ++pass) {
    out.clear();
    out.reserve(total);
    std::vector<float> row(static_cast<size_t>(n_in));
    bool fits = true;
    for (const auto* w : parts)
      for (int64_t r = 0; r < w->n_out && fits; ++r) {
        dequantize_any_row(*w, r, row.data());
        for (float v : row) {
          if (f16 && !(std::fabs(v) <= 65504.0f)) {
            fits = false;
            break;
          }
          out.push_back(f16 ? ::qb::f32_to_f16(v) : ::qb::f32_to_bf16(v));
        }
      }
    if (fits || !f16) return f16;
    f16 = false;  // a value f16 cannot hold (or NaN): redo in bf16
  }
  return f16;
}

Mat CudaBackend::Impl::upload_w8a8(std::initializer_list<const model::WeightMatrix*> parts, const std::string& what) {
  Mat m;
  m.n_in = (*parts.begin())->n_in;
  const runtime::cpu::ActQuant act = (*parts.begin())->act;
  std::string layout;
  for (const auto* w : parts) {
    QB_CHECK(w->act == act, "cuda backend: {}: W8A8 and other matrices in one fused product have no GPU path",
             what);
    QB_CHECK(w->n_in == m.n_in, "cuda upload {}: inner dimensions differ", what);
    runtime::cpu::check_w8a8(*w);
    layout = quant::layout_name(w->quantized->layout);
    m.n_out += w->n_out;
  }
  const bool fp8 = act == runtime::cpu::ActQuant::Fp8PerToken;
  std::vector<uint8_t> codes(size_t(m.n_out * m.n_in));
  std::vector<float> sc(size_t(m.n_out));
  int64_t r0 = 0;
  for (const auto* w : parts) {
    const quant::QuantizedTensor& q = *w->quantized;
    for (int64_t r = 0; r < w->n_out; ++r) {
      const uint8_t* c = q.codes.data() + size_t(r) * q.row_bytes();
      uint8_t* d = codes.data() + size_t((r0 + r) * m.n_in);
      for (int64_t i = 0; i < m.n_in; ++i) d[i] = fp8 ? c[i] : uint8_t(int8_t(int(c[i]) - 128));
      sc[size_t(r0 + r)] = q.params(r, 0).scale;
    }
    r0 += w->n_out;
  }
  m.w8a8 = true;
  m.w8a8_fp8 = fp8;
  m.w8q = DevBuf(codes.size());
  m.w8s = DevBuf(sc.size() * 4);
  cuda_ok(cudaMemcpy(m.w8q.p, codes.data(), codes.size(), cudaMemcpyHostToDevice), "weight upload");
  cuda_ok(cudaMemcpy(m.w8s.p, sc.data(), sc.size() * 4, cudaMemcpyHostToDevice), "weight upload");
  m.fp8_tc = fp8 && fp8_tc_takes(m.n_out, m.n_in);
  m.path = layout + " a8 -> " + (fp8 ? fp8_path(m) : int8_path(m));
  note_w8a8(m);
  return m;
}

void CudaBackend::Impl::note_w8a8(const Mat& m) {
  any_w8a8 = true;
  if (m.w8a8_fp8 && fp8_tensor_cores && !fp8_exact && !fp8_tc) {
    fp8_tc = std::make_unique<Fp8TensorCoreGemm>();
    if (!fp8_outer_scales) fp8_tc->outer_scales_from(std::numeric_limits<int>::max());
  }
  w8_in = std::max(w8_in, m.n_in);
  w8_out = std::max(w8_out, m.n_out);
}

Mat CudaBackend::Impl::synthetic_w8a8(int64_t n_out, int64_t n_in, uint64_t seed, bool fp8) {
  Mat m;
  m.n_out = n_out;
  m.n_in = n_in;
  m.w8a8 = true;
  m.w8a8_fp8 = fp8;
  m.w8q = DevBuf(size_t(n_out * n_in));
  fill_bytes(m.w8q.p, m.w8q.bytes, seed, fp8 ? 0xf7 : 0xff, stream);
  std::vector<float> sc(static_cast<size_t>(n_out));
  std::mt19937_64 rng(seed ^ 0x5ca1e);
  std::uniform_real_distribution<float> ud(0.8f, 1.2f);
  for (float& v : sc) v = ud(rng) * float(1.0 / std::sqrt(double(n_in))) / (fp8 ? 100.0f : 74.0f);
  m.w8s = DevBuf(sc.size() * 4);
  cuda_ok(cudaMemcpy(m.w8s.p, sc.data(), sc.size() * 4, cudaMemcpyHostToDevice), "weight upload");
  m.fp8_tc = fp8 && fp8_tc_takes(m.n_out, m.n_in);
  m.path = "synthetic " + (fp8 ? fp8_path(m) : int8_path(m));
  note_w8a8(m);
  m.stored = m.bytes();
  return m;
}

Mat CudaBackend::Impl::upload_stacked(std::initializer_list<const model::WeightMatrix*> parts, const std::string& what,
                                      bool gate_up) {
  Mat m = upload_parts(parts, what, gate_up);
  for (const auto* w : parts) m.stored += w->quantized ? w->quantized->storage_bytes() : w->row_bytes * size_t(w->n_out);
  return m;
}

Mat CudaBackend::Impl::upload_parts(std::initializer_list<const model::WeightMatrix*> parts, const std::string& what,
                                    bool gate_up) {
  for (const auto* w : parts)
    if (w->act != runtime::cpu::ActQuant::None) {
      QB_CHECK(w8a8_enabled,
               "cuda backend: weight {} runs W8A8 ({} activations) and the GPU's W8A8 path is off (QB_CUDA_W8A8=0; "
               "unset it to run W8A8)",
               what, runtime::cpu::act_quant_name(w->act));
      return upload_w8a8(parts, what);
    }
  Mat m;
  m.n_in = (*parts.begin())->n_in;
  std::vector<PartPlan> plans;
  for (const auto* w : parts) {
    QB_CHECK(w->n_in == m.n_in, "cuda upload {}: inner dimensions differ", what);
    plans.push_back(plan_for(*w, what));
    if (!pack_q6k && w->type == formats::GgmlType::Q6_K && !w->quantized) plans.back() = {false, {}, "q6_K -> dense"};
    m.n_out += w->n_out;
  }
  bool all_packed = use_packed && dense == DenseType::Bits16, one_spec = true;
  for (const auto& pl : plans) {
    all_packed = all_packed && pl.packed && pl.spec.format != WeightFormat::BF16;  // (f16 fragments for all)
    one_spec = one_spec && same_spec(pl.spec, plans[0].spec);
  }
  const bool packed = all_packed && one_spec;
  std::string path;
  for (const auto& pl : plans)
    if (path.find(pl.path) == std::string::npos) path += (path.empty() ? "" : ", ") + pl.path;
  if (all_packed && !one_spec && split_stacks) {
    // One product per run of parts with one spec, all reading the same f16 activation fragments.
    m.packed = true;
    size_t i = 0;
    int64_t row0 = 0;
    auto part = parts.begin();
    while (i < plans.size()) {
      HostMatrix hm;
      hm.spec = plans[i].spec;
      hm.n_in = m.n_in;
      Mat::Segment sg;
      sg.row0 = row0;
      for (; i < plans.size() && same_spec(plans[i].spec, hm.spec); ++i, ++part) append_packed_rows(**part, hm);
      row0 += hm.n_out;
      sg.pk = upload(pack(hm));
      if (!qgemm_takes(sg.pk))
        wscratch_bytes = std::max(wscratch_bytes, size_t(hm.n_out * hm.n_in) * 2);
      m.segments.push_back(std::move(sg));
    }
    m.path = path + " (one product per format, " + std::to_string(m.segments.size()) + " for this stack)";
    return m;
  }
  if (packed) {
    HostMatrix hm;
    hm.spec = plans[0].spec;
    hm.n_in = m.n_in;
    for (const auto* w : parts) append_packed_rows(*w, hm);
    if (gate_up && interleave_gate_up(m.n_out / 2)) {
      hm = interleave_row_blocks16(hm);
      m.gate_up16 = true;
    }
    m.packed = true;
    m.pk = upload(pack(hm));
    m.path = path;
    if (!qgemm_takes(m.pk)) wscratch_bytes = std::max(wscratch_bytes, size_t(m.n_out * m.n_in) * 2);
    return m;
  }
  std::string types;
  for (const auto& pl : plans) {
    const std::string t = pl.path.substr(0, pl.path.find(" -> "));
    if (types.find(t) == std::string::npos) types += (types.empty() ? "" : "+") + t;
  }
  DenseMatrix& dm = m.dense;
  dm.n_in = m.n_in;
  dm.n_out = m.n_out;
  dm.data = DevBuf(size_t(m.n_out * m.n_in) * elem());
  if (dense == DenseType::Bits16) {
    std::vector<uint16_t> host16;
    dm.f16 = dense16_rows(parts, plans, m.n_in, host16);
    m.path = types + " -> dense " + (dm.f16 ? "f16" : "bf16") + " (cuBLAS)";
    cuda_ok(cudaMemcpy(dm.data.p, host16.data(), host16.size() * 2, cudaMemcpyHostToDevice), "weight upload");
    return m;
  }
  m.path = types + " -> dense f32 (cuBLAS)";
  std::vector<float> row(size_t(m.n_in));
  std::vector<uint8_t> host(size_t(m.n_in) * elem() * 256);
  int64_t out_row = 0;
  for (const auto* w : parts) {
    for (int64_t r0 = 0; r0 < w->n_out; r0 += 256) {
      const int64_t nr = std::min<int64_t>(256, w->n_out - r0);
      for (int64_t r = 0; r < nr; ++r) {
        dequantize_any_row(*w, r0 + r, row.data());
        std::copy(row.begin(), row.end(), reinterpret_cast<float*>(host.data()) + r * m.n_in);
      }
      cuda_ok(cudaMemcpy(dm.data.as<uint8_t>() + size_t((out_row + r0) * m.n_in) * elem(), host.data(),
                         size_t(nr * m.n_in) * elem(), cudaMemcpyHostToDevice),
              "weight upload");
    }
    out_row += w->n_out;
  }
  return m;
}

Mat CudaBackend::Impl::synthetic(const QuantSpec& spec, int64_t n_out, int64_t n_in, uint64_t seed,
                                 const std::string& what) {
  Mat m;
  m.n_out = n_out;
  m.n_in = n_in;
  const float sd = float(1.0 / std::sqrt(double(n_in)));
  if (spec.format == WeightFormat::BF16) {
    m.dense.n_out = n_out;
    m.dense.n_in = n_in;
    m.dense.data = DevBuf(size_t(n_out * n_in) * 2);
    const float a = sd * 1.7320508f;
    fill_uniform_bf16(m.dense.data.p, size_t(n_out * n_in), seed, -a, a, stream);
    m.path = "synthetic bf16 (cuBLAS)";
    m.stored = m.bytes();
    return m;
  }
  PackedShape ps;
  try {
    ps = packed_shape(spec, n_out, n_in);
  } catch (const std::exception& e) {
    fail("synthetic {}: {}", what, e.what());
  }
  m.packed = true;
  m.pk = allocate(ps);
  fill_bytes(m.pk.weights.get(), m.pk.weight_bytes, seed, 0xff, stream);
  const float s = sd / (spec.format == WeightFormat::W8A16 ? 74.0f : 4.6f);  // std of q - z: 74 (int8), 4.6 (int4)
  // (mins near -7.5 s: q * s + m centred as the other formats' weights)
  fill_random_group_params(m.pk, seed, 0.8f * s, 1.2f * s, -8.5f * s, -6.5f * s, stream);
  m.path = "synthetic " + spec_name(spec) + " packed (qgemv)";
  if (!qgemm_takes(m.pk)) wscratch_bytes = std::max(wscratch_bytes, size_t(n_out * n_in) * 2);
  m.stored = m.bytes();
  return m;
}

Mat CudaBackend::Impl::synthetic_stack(const std::vector<std::pair<QuantSpec, int64_t>>& parts, int64_t n_in,
                                       const std::function<uint64_t()>& seed, const std::string& what) {
  Mat m;
  m.n_in = n_in;
  for (const auto& pr : parts) m.n_out += pr.second;
  if (!split_stacks || !pack_q6k) {
    m = synthetic({WeightFormat::BF16, 0, false}, m.n_out, n_in, seed(), what);
    m.path = "synthetic stack of several formats -> dense bf16 (cuBLAS; split stacks or q6_k packing off)";
    return m;
  }
  m.packed = true;
  for (const auto& [spec, rows] : parts) {
    const int64_t row0 = m.segments.empty() ? 0 : m.segments.back().row0 + m.segments.back().pk.shape.n_out;
    m.segments.push_back({row0, synthetic(spec, rows, n_in, seed(), what).pk});
    m.path += (m.path.empty() ? "synthetic " : "|") + spec_name(spec);
  }
  m.path += " packed (qgemv, one product per format)";
  m.stored = m.bytes();
  return m;
}

}  // namespace qb::runtime::cuda
