// Clipping search shared by rtn_clip, imatrix and AWQ: for every (row, group) try shrinking the range
// by each ratio of a grid and keep the one whose weight change d minimises d^T M d, where M is the
// group's block of X^T X (output error on calibration activations), a diagonal of per-column
// importances (llama.cpp's imatrix), or the identity (plain weight error when there is no data).
// Groups are searched independently, as AWQ's auto_clip does (cross-group terms are ignored).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "quantbench/core/thread_pool.h"
#include "quantbench/quant/method/calibration.h"
#include "quantbench/quant/qformat/quantized_tensor.h"

namespace qb::quant {

struct ErrorWeights {
  enum class Kind { Identity, Diagonal, Full };
  Kind kind = Kind::Identity;
  int64_t cols = 0;
  std::vector<double> m;  // Diagonal: cols entries; Full: cols x cols row-major

  // d^T M d over columns [c0, c0 + n) for d indexed from 0.
  double eval(const double* d, int64_t c0, int64_t n) const;
  std::string describe() const;
};

// X^T X from the calibration (accumulated, or rebuilt from kept samples); throws if it has neither.
std::vector<double> calibration_gram(const LayerCalibration& c);

// Full weights from the calibration when there is one, identity otherwise.
ErrorWeights output_error_weights(const LayerCalibration* c, int64_t cols);

// Ratios 1, 1 - 1/steps, ... down to (but excluding) 1 - max_shrink (AWQ: steps 20, max_shrink 0.5).
std::vector<float> clip_ratios(int64_t steps, double max_shrink);

// Quantizes with the best ratio per group (per tensor for Granularity::Tensor). mean_ratio, if given,
// receives the average chosen ratio (for the manifest). Rows are searched in parallel over pool when
// one is given; the result is the same with or without it.
QuantizedTensor quantize_clip_search(const float* w, int64_t rows, int64_t cols, const QuantLayout& l,
                                     const ErrorWeights& m, const std::vector<float>& ratios,
                                     double* mean_ratio = nullptr, ThreadPool* pool = nullptr);

}  // namespace qb::quant
