// LayerCalibration: what a method may know about the inputs of one linear layer, accumulated from
// activation rows x (1 x in_features) as the model runs: the sum of x x^T (GPTQ's Hessian, output
// error of any weight change), per-input-channel mean |x|, mean x^2 and max |x| (AWQ, imatrix,
// SmoothQuant), and optionally a bounded sample of the rows themselves. Accumulating instead of
// storing all rows keeps memory at in_features^2 whatever the calibration length.
#pragma once
#include <cstdint>
#include <vector>

#include "quantbench/core/thread_pool.h"

namespace qb::quant {

class LayerCalibration {
 public:
  // keep_xtx: accumulate X^T X (in_features^2 doubles); max_samples: rows kept verbatim (0 = none).
  explicit LayerCalibration(int64_t in_features, bool keep_xtx = true, int64_t max_samples = 0);

  // Adds n rows (row-major n x in_features). Throws qb::Error on a non-finite value. X^T X is
  // accumulated by runtime/cpu/gemm_f32 (f32 products summed in f32 over chunks of 256 rows, the
  // chunks summed in double: about 1e-6 relative, where GPTQ's reference sums in f32 throughout),
  // spread over `pool` when given.
  void add(const float* x, int64_t n, ThreadPool* pool = nullptr);

  int64_t in_features() const { return in_; }
  int64_t count() const { return count_; }
  bool has_xtx() const { return keep_xtx_; }
  const std::vector<double>& xtx() const { return xtx_; }  // sum of x x^T, row-major
  int64_t num_samples() const { return int64_t(samples_.size()) / in_; }
  const std::vector<float>& samples() const { return samples_; }
  std::vector<double> mean_abs() const;
  std::vector<double> mean_sq() const;
  const std::vector<float>& max_abs() const { return max_abs_; }

 private:
  int64_t in_, count_ = 0, max_samples_;
  bool keep_xtx_;
  std::vector<double> xtx_, sum_abs_, sum_sq_;
  std::vector<float> max_abs_, samples_;
};

// Output error sum_rows ||(W - V) x||^2 summed over the calibration rows, for row-major rows x cols
// W and V: through X^T X when kept, else over the kept samples. Throws if neither is available.
double output_error(const float* w, const float* v, int64_t rows, int64_t cols, const LayerCalibration& c);

}  // namespace qb::quant
