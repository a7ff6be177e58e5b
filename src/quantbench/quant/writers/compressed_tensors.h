// A quantized model as a Hugging Face directory in compressed-tensors' "pack-quantized" format, the
// layout vLLM loads for INT4/INT8 weight-only models (CompressedTensorsWNA16):
//   OUT/config.json          the architecture (LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM)
//                            plus quantization_config {quant_method: compressed-tensors, format:
//                            pack-quantized, config_groups, ignore: [lm_head, ...]}
//   OUT/model.safetensors    per quantized Linear: weight_packed, weight_scale, weight_shape and, when
//                            asymmetric, weight_zero_point (compressed_tensors_layout.h has the bytes);
//                            every other tensor under its HF name; __metadata__ holds the Manifest
//                            facts and each matrix's quantbench layout (so the reader restores it exactly)
//   OUT/tokenizer*.json ...  copied from the source model's directory when present there
// The directory is built under a temporary name beside OUT and renamed into place, so on any error
// nothing is left at OUT (an existing artifact at OUT is replaced only after the new one is complete).
//
// Design: the writer reads the in-memory quantized Model (what the CPU runtime runs), never a side
// table, so the artifact holds exactly the weights that were evaluated. The reader is not a general
// HF loader: it puts an artifact's matrices back over the GGUF model they came from, which is what
// the round-trip check (same logits) needs.
#pragma once
#include <memory>
#include <string>

#include "quantbench/core/manifest.h"
#include "quantbench/model/model.h"
#include "quantbench/quant/quantize_model.h"

namespace qb::quant {

// Throws qb::Error (naming the tensor or field) if the model or scheme cannot be expressed: an
// architecture other than llama/qwen2/qwen3, a non-integer format (NF4, FP8), per-tensor scales,
// f32 scales, or quantized matrices whose scale dtypes differ.
void write_compressed_tensors(const QuantizedModel& qm, const Manifest& manifest, const std::string& dir);

// `source` with every quantized block matrix replaced by the one stored in the artifact at `dir`
// (rows back in GGUF order, our original group layout restored). Matrices the artifact keeps dense
// (its `ignore` list) stay as in `source`. Throws qb::Error("DIR/model.safetensors: tensor 'NAME': ...")
// on a missing or inconsistent tensor, or an artifact quantbench did not write.
std::shared_ptr<const model::Model> load_compressed_tensors_over(std::shared_ptr<const model::Model> source,
                                                                 const std::string& dir);

}  // namespace qb::quant
