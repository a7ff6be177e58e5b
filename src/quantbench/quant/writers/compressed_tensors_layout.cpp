// See compressed_tensors_layout.h. Packing is a byte copy (our row bit stream is the artifact's word
// stream on a little-endian host); only zero points and scales are re-laid out.
#include "quantbench/quant/writers/compressed_tensors_layout.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstring>
#include <numeric>

#include "quantbench/core/error.h"

namespace qb::quant::ct {

static_assert(std::endian::native == std::endian::little, "pack-quantized words are little-endian");

namespace {

struct NameMap {
  std::string_view gguf, hf;
};
constexpr NameMap kMatrices[] = {
    {"attn_q", "self_attn.q_proj"},   {"attn_k", "self_attn.k_proj"}, {"attn_v", "self_attn.v_proj"},
    {"attn_output", "self_attn.o_proj"}, {"ffn_gate", "mlp.gate_proj"}, {"ffn_up", "mlp.up_proj"},
    {"ffn_down", "mlp.down_proj"},
};
constexpr NameMap kVectors[] = {
    {"attn_norm", "input_layernorm"}, {"ffn_norm", "post_attention_layernorm"},
    {"attn_q_norm", "self_attn.q_norm"}, {"attn_k_norm", "self_attn.k_norm"},
};

// "blk.N.REST" -> (N, REST), or nullopt.
bool split_block(std::string_view name, int64_t& layer, std::string_view& rest) {
  if (name.rfind("blk.", 0) != 0) return false;
  name.remove_prefix(4);
  const auto dot = name.find('.');
  if (dot == std::string_view::npos) return false;
  auto [p, ec] = std::from_chars(name.data(), name.data() + dot, layer);
  if (ec != std::errc() || p != name.data() + dot) return false;
  rest = name.substr(dot + 1);
  return true;
}

int bits_of(const QuantLayout& l) { return format_traits(l.format).bits; }

}  // namespace

std::string hf_module_name(std::string_view gguf) {
  int64_t il = 0;
  std::string_view rest;
  if (split_block(gguf, il, rest))
    for (const auto& m : kMatrices)
      if (rest.size() == m.gguf.size() + 7 && rest.substr(0, m.gguf.size()) == m.gguf &&
          rest.substr(m.gguf.size()) == ".weight")
        return fmt::format("model.layers.{}.{}", il, m.hf);
  fail("tensor '{}' is not a block matrix with a Hugging Face name", gguf);
}

std::string hf_tensor_name(std::string_view gguf) {
  if (gguf == "token_embd.weight") return "model.embed_tokens.weight";
  if (gguf == "output_norm.weight") return "model.norm.weight";
  if (gguf == "output.weight") return "lm_head.weight";
  int64_t il = 0;
  std::string_view rest;
  if (split_block(gguf, il, rest)) {
    const auto dot = rest.rfind('.');
    const std::string_view base = rest.substr(0, dot), suffix = dot == std::string_view::npos ? "" : rest.substr(dot);
    for (const auto& m : kMatrices)
      if (base == m.gguf && (suffix == ".weight" || suffix == ".bias")) return fmt::format("model.layers.{}.{}{}", il, m.hf, suffix);
    for (const auto& v : kVectors)
      if (base == v.gguf && suffix == ".weight") return fmt::format("model.layers.{}.{}.weight", il, v.hf);
  }
  fail("tensor '{}' has no Hugging Face name here", gguf);
}

std::vector<int64_t> hf_row_order(const model::ModelSpec& spec, std::string_view name, int64_t rows) {
  std::vector<int64_t> order(static_cast<size_t>(rows));
  std::iota(order.begin(), order.end(), int64_t(0));
  int64_t il = 0;
  std::string_view rest;
  const bool q = split_block(name, il, rest) && rest == "attn_q.weight";
  const bool k = split_block(name, il, rest) && rest == "attn_k.weight";
  if (spec.rope_style != model::RopeStyle::Normal || (!q && !k)) return order;
  const int64_t hd = spec.head_dim_k, heads = q ? spec.n_head : spec.n_head_kv;
  QB_CHECK(spec.n_rot == hd && hd % 2 == 0 && heads * hd == rows,
           "tensor '{}': cannot undo the GGUF rope permutation (n_rot {}, head_dim {}, {} heads, {} rows)", name,
           spec.n_rot, hd, heads, rows);
  // HF row h*hd + j*hd/2 + i (j: first or second half) is GGUF row h*hd + 2i + j (adjacent pairs).
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t j = 0; j < 2; ++j)
      for (int64_t i = 0; i < hd / 2; ++i) order[size_t(h * hd + j * (hd / 2) + i)] = h * hd + 2 * i + j;
  return order;
}

int64_t artifact_group_size(const QuantizedTensor& q) {
  if (q.layout.granularity != Granularity::Group || q.groups_per_row() == 1) return 0;
  return std::gcd(q.layout.group_size, q.cols);
}

int64_t artifact_groups(const QuantizedTensor& q) {
  const int64_t g = artifact_group_size(q);
  return g == 0 ? 1 : q.cols / g;
}

namespace {

void check_packable(const QuantLayout& l, std::string_view where) {
  QB_CHECK(is_int_format(l.format), "{}: compressed-tensors pack-quantized holds integer formats only, not {}", where,
           format_traits(l.format).name);
  QB_CHECK(l.granularity != Granularity::Tensor, "{}: per-tensor integer scales are not written", where);
  QB_CHECK(l.scale_type == ScaleType::F16 || l.scale_type == ScaleType::BF16,
           "{}: scales must be f16 or bf16 for compressed-tensors, not {}", where, scale_type_name(l.scale_type));
}

}  // namespace

PackedTensors pack(const QuantizedTensor& q, const std::vector<int64_t>& order) {
  q.check();
  check_packable(q.layout, "compressed-tensors");
  QB_CHECK(int64_t(order.size()) == q.rows, "row order has {} entries for {} rows", order.size(), q.rows);
  const int bits = bits_of(q.layout);
  PackedTensors p;
  p.words_per_row = (q.cols * bits + 31) / 32;
  p.n_groups = artifact_groups(q);
  const int64_t sub = artifact_group_size(q);  // 0: one group per row
  const size_t rb = q.row_bytes(), wb = size_t(p.words_per_row) * 4;
  p.weight_packed.assign(size_t(q.rows * p.words_per_row), 0);
  p.weight_scale.resize(size_t(q.rows * p.n_groups) * 2);
  if (q.layout.asymmetric) {
    p.zp_words = (q.rows * bits + 31) / 32;
    p.weight_zero_point.assign(size_t(p.zp_words * p.n_groups), 0);
  }
  for (int64_t hr = 0; hr < q.rows; ++hr) {
    const int64_t r = order[size_t(hr)];
    std::memcpy(reinterpret_cast<uint8_t*>(&p.weight_packed[size_t(hr * p.words_per_row)]),
                &q.codes[size_t(r) * rb], std::min(rb, wb));
    for (int64_t k = 0; k < p.n_groups; ++k) {
      const int64_t ours = sub == 0 ? 0 : (k * sub) / q.group_cols();
      const size_t si = q.scale_index(r, ours);
      std::memcpy(&p.weight_scale[size_t(hr * p.n_groups + k) * 2], &q.scales[si * 2], 2);
      if (q.layout.asymmetric) {
        const int64_t bit = hr * bits;
        const uint32_t z = q.zeros[si];
        auto* w = reinterpret_cast<uint32_t*>(p.weight_zero_point.data());
        w[size_t((bit / 32) * p.n_groups + k)] |= z << (bit % 32);
        if (bit % 32 + bits > 32) w[size_t((bit / 32 + 1) * p.n_groups + k)] |= z >> (32 - bit % 32);
      }
    }
  }
  return p;
}

QuantizedTensor unpack(const QuantLayout& layout, int64_t rows, int64_t cols, const std::vector<int64_t>& order,
                       const int32_t* weight_packed, size_t n_packed, const uint8_t* weight_scale, size_t n_scale_bytes,
                       const int32_t* weight_zero_point, size_t n_zp, std::string_view where) {
  check_packable(layout, where);
  QuantizedTensor q = QuantizedTensor::allocate(layout, rows, cols);
  QB_CHECK(int64_t(order.size()) == rows, "{}: row order has {} entries for {} rows", where, order.size(), rows);
  const int bits = bits_of(layout);
  const int64_t words = (cols * bits + 31) / 32, n_groups = artifact_groups(q), sub = artifact_group_size(q);
  QB_CHECK(n_packed == size_t(rows * words), "{}: weight_packed has {} words, expected {} x {}", where, n_packed, rows,
           words);
  QB_CHECK(n_scale_bytes == size_t(rows * n_groups) * 2, "{}: weight_scale has {} bytes, expected {} x {} scales",
           where, n_scale_bytes, rows, n_groups);
  const int64_t zp_words = layout.asymmetric ? (rows * bits + 31) / 32 : 0;
  QB_CHECK(n_zp == size_t(zp_words * n_groups), "{}: weight_zero_point has {} words, expected {}", where, n_zp,
           zp_words * n_groups);
  const size_t rb = q.row_bytes(), wb = size_t(words) * 4;
  const uint32_t zmask = (1u << bits) - 1;
  std::vector<bool> seen(size_t(rows), false);
  for (int64_t hr = 0; hr < rows; ++hr) {
    const int64_t r = order[size_t(hr)];
    QB_CHECK(r >= 0 && r < rows && !seen[size_t(r)], "{}: bad row order", where);
    seen[size_t(r)] = true;
    const auto* src = reinterpret_cast<const uint8_t*>(weight_packed + hr * words);
    // Bits past the last code must be zero (pack_to_int32 pads with zeros); anything else is a
    // different shape or a corrupt file.
    for (int64_t bit = cols * bits; bit < words * 32; ++bit)
      QB_CHECK(!((src[bit / 8] >> (bit % 8)) & 1), "{}: weight_packed row {} has bits set past column {}", where, hr,
               cols);
    std::memcpy(&q.codes[size_t(r) * rb], src, std::min(rb, wb));
    for (int64_t g = 0; g < q.groups_per_row(); ++g) {
      // Our group g covers artifact groups [k0, k1); they must agree.
      const int64_t k0 = sub == 0 ? 0 : g * q.group_cols() / sub;
      const int64_t k1 = sub == 0 ? 1 : std::min(n_groups, (g + 1) * q.group_cols() / sub);
      const size_t si = q.scale_index(r, g);
      for (int64_t k = k0; k < k1; ++k) {
        const uint8_t* s = &weight_scale[size_t(hr * n_groups + k) * 2];
        if (k == k0) std::memcpy(&q.scales[si * 2], s, 2);
        QB_CHECK(std::memcmp(&q.scales[si * 2], s, 2) == 0, "{}: row {}: scales of one group of {} differ", where, hr,
                 q.group_cols());
        if (layout.asymmetric) {
          const int64_t bit = hr * bits;
          const auto* w = reinterpret_cast<const uint32_t*>(weight_zero_point);
          uint32_t z = w[size_t((bit / 32) * n_groups + k)] >> (bit % 32);
          if (bit % 32 + bits > 32) z |= w[size_t((bit / 32 + 1) * n_groups + k)] << (32 - bit % 32);
          z &= zmask;
          if (k == k0) q.zeros[si] = uint8_t(z);
          QB_CHECK(q.zeros[si] == z, "{}: row {}: zero points of one group of {} differ", where, hr, q.group_cols());
        }
      }
    }
  }
  q.check();
  return q;
}

}  // namespace qb::quant::ct
