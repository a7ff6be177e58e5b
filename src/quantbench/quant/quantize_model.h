// quantize_model: a loaded GGUF model + a Scheme (+ calibration samples) -> a quantized in-memory
// Model that the CPU backend runs, the bytes to write, and the Manifest facts that say what ran.
//
// Design: activations are collected by the CPU backend (an observer on every linear layer's input),
// either in one pass over the UNQUANTIZED model or (QuantizeOptions::calib_order) block by block
// over the model whose earlier blocks are already quantized; layers sharing an input (q/k/v, gate/up)
// share one LayerCalibration. Each block matrix is then quantized independently per its TensorScheme.
// token_embd and output are kept as stored (recorded). AWQ's input scales are folded into the
// preceding RMSNorm gain for q/k/v and gate/up -- which is only exact when the group shares one
// scale vector, so AWQ runs once on the group's rows stacked -- and into ffn_up's rows for ffn_down
// (down is processed first, so up is quantized after the fold). attn_output has no foldable
// predecessor here (attention mixes v's rows across heads with GQA): AWQ there falls back to the
// group's configured clip search without scales, i.e. plain rtn, and the manifest says so.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "quantbench/core/manifest.h"
#include "quantbench/model/model.h"
#include "quantbench/quant/scheme.h"

namespace qb::quant {

enum class CalibOrder { Auto, OnePass, Sequential };

struct QuantizeOptions {
  const std::vector<std::vector<int32_t>>* calibration = nullptr;  // token samples; null: none
  int n_threads = 0;
  bool progress = true;
  // The calibration pass runs the CPU fast path with whole samples through the dequantize-then-GEMM
  // matmul (f32 weights and activations; cpu_backend.h) unless this asks for the exact reference path
  // (double accumulation), which is ~50x slower.
  bool calibrate_on_reference = false;
  // Sequential calibration: block i's statistics come from the model with blocks 0..i-1 already
  // quantized (GPTQ's reference and AutoGPTQ do this), at the cost of two block passes per block
  // instead of one forward in all; OnePass calibrates every block on the unquantized model. Auto is
  // Sequential when any matrix uses gptq (on SmolLM2 at w3g128 one-pass GPTQ was worse than RTN and
  // sequential GPTQ better: docs/quantization.md), else OnePass (imatrix and AWQ's references
  // calibrate on the unquantized model).
  CalibOrder calib_order = CalibOrder::Auto;
};

// What happened to one stored matrix.
struct MatrixOutcome {
  std::string name;
  std::string stored_as;   // "q4_0", "int4 g32 f16-scales", "f32 (kept)", ...
  int64_t rows = 0, cols = 0;
  size_t bytes = 0;
  std::vector<std::string> notes;
};

struct QuantizedModel {
  std::shared_ptr<const model::Model> source;
  std::shared_ptr<const model::Model> model;  // runs on the CPU backend; views into `buffers`
  std::vector<std::shared_ptr<std::vector<uint8_t>>> buffers;  // ggml-typed matrix bytes we made
  std::vector<MatrixOutcome> matrices;
  std::vector<std::string> changed_vectors;  // norm gains rewritten by AWQ folding
  double bpw_all = 0;        // bits per weight over every matrix incl. token_embd/output
  double bpw_no_embd = 0;    // over the block matrices only
  Manifest manifest;         // scheme.*, calibration.activations.*, quantize.*
};

// Throws qb::Error naming the tensor when the scheme cannot apply (e.g. a method needs calibration
// and none was given, an unsupported format/method pair).
QuantizedModel quantize_model(std::shared_ptr<const model::Model> source, const Scheme& scheme,
                              const MethodRegistry& methods, const QuantizeOptions& opts);

}  // namespace qb::quant
