// Weight repacking at load: which stored matrices the CUDA backend keeps packed for the qgemv decode
// kernels, and their conversion into qgemv's HostMatrix (our int8/int4 QuantizedTensors, GGUF Q4_0,
// Q4_1, Q5_0, Q5_1 and Q8_0 exactly; the GGUF K-quants Q2_K..Q6_K with their sub-block scales rounded
// once to f16). Plain C++, apart from the backend, so the CPU test suite compares every repacked weight
// with the CPU reference's dequantization (tests/runtime/cuda_repack_test.cpp; no GPU needed).
#pragma once
#include <string>

#include "quantbench/model/model.h"
#include "quantbench/runtime/cuda/host/packed_layout.h"

namespace qb::runtime::cuda {

// How one stored matrix reaches the device.
struct PartPlan {
  bool packed = false;
  QuantSpec spec;  // packed only
  std::string path;  // for describe(): "q4_0 -> w4g32 packed (qgemv, exact repack)"
};

// Throws qb::Error (one line, listing the supported formats) for formats without a GPU path.
PartPlan plan_for(const model::WeightMatrix& w, const std::string& what);
std::string supported_list();

// Appends all rows of w (whose plan is packed with m.spec) to m; m.n_in must equal w.n_in.
void append_packed_rows(const model::WeightMatrix& w, HostMatrix& m);

}  // namespace qb::runtime::cuda
