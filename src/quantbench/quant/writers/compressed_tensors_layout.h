// The byte-level mapping between a QuantizedTensor (our INTk layout) and compressed-tensors'
// "pack-quantized" tensors (compressed_tensors 0.20, PackedQuantizationCompressor + pack_to_int32),
// shared by the writer and the reader so the two cannot drift apart:
//
//   weight_packed      I32 {rows, ceil(cols*bits/32)}: element c of a row sits at bit c*bits of the
//                      row's little-endian word stream (dense; 8 int4 or 4 int8 per word). The stored
//                      unsigned value is the signed code + 2^(bits-1), which is exactly our unsigned
//                      code q: our row bit stream, padded to whole words, IS weight_packed.
//   weight_scale       F16/BF16 {rows, n_groups}: our scale bits, unchanged.
//   weight_zero_point  I32 {ceil(rows*bits/32), n_groups} (asymmetric only): zero points packed the
//                      same way along dim 0 (output rows). Their signed zero point is z - 2^(bits-1),
//                      so the stored unsigned value is again our z, and (q_s - zp_s) * s = (q - z) * s.
//   weight_shape       I32 {2} = {rows, cols} (compressed-tensors writes I64; any integer dtype loads).
//
// compressed-tensors requires the group size to divide the row. Our groups may leave a shorter last
// group (576 = 4 x 128 + 64); such a tensor is written with group size gcd(group, cols), each of our
// groups' scale repeated over its sub-groups: an exact re-expression, undone by the reader. A row that
// is one group (cols <= group, or per-channel scales) is written with strategy "channel".
//
// Llama GGUF files store Q and K rows permuted for adjacent-pair rope (llama.cpp's converter undoes
// HF's permutation); HF checkpoints rotate halves, so those rows are permuted back here. Rows are
// whole quantization units (groups run along columns), so the permutation is exact.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "quantbench/model/model_spec.h"
#include "quantbench/quant/qformat/quantized_tensor.h"

namespace qb::quant::ct {

// HF module name of a GGUF block matrix name: "blk.3.attn_q.weight" -> "model.layers.3.self_attn.q_proj".
// Throws qb::Error for a name that is not one of the seven block matrices.
std::string hf_module_name(std::string_view gguf_matrix_name);
// HF tensor name of any other GGUF tensor quantbench writes: norms, biases, embeddings, output.
std::string hf_tensor_name(std::string_view gguf_name);

// order[hf_row] = gguf_row for this matrix (identity except Llama's attn_q / attn_k). Throws if the
// permutation is not defined (partial rotary dims).
std::vector<int64_t> hf_row_order(const model::ModelSpec& spec, std::string_view gguf_matrix_name, int64_t rows);

// The group size the artifact uses for q: 0 for strategy "channel", else a divisor of cols.
int64_t artifact_group_size(const QuantizedTensor& q);
int64_t artifact_groups(const QuantizedTensor& q);  // columns of weight_scale

struct PackedTensors {
  std::vector<int32_t> weight_packed;      // rows x words
  int64_t words_per_row = 0;
  std::vector<uint8_t> weight_scale;       // rows x n_groups scales, 2 bytes each, little-endian
  std::vector<int32_t> weight_zero_point;  // zp_words x n_groups (asymmetric), else empty
  int64_t zp_words = 0;
  int64_t n_groups = 0;
};

// q (an INTk tensor with f16/bf16 scales) in the artifact's layout, rows in `order`.
PackedTensors pack(const QuantizedTensor& q, const std::vector<int64_t>& order);

// The inverse: rebuilds a tensor of `layout` (our original, from the artifact's metadata) and shape
// from the artifact's arrays. Throws qb::Error naming `where` if sizes disagree, a packed row has bits
// set past its last code, or sub-group scales / zero points of one of our groups differ.
QuantizedTensor unpack(const QuantLayout& layout, int64_t rows, int64_t cols, const std::vector<int64_t>& order,
                       const int32_t* weight_packed, size_t n_packed, const uint8_t* weight_scale, size_t n_scale_bytes,
                       const int32_t* weight_zero_point, size_t n_zp, std::string_view where);

}  // namespace qb::quant::ct
