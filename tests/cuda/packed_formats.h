// Every format of the GPU's packed decode layout (runtime/cuda/host/packed_layout.h), for the checks that
// must cover them all: the CPU suite's layout test (tests/runtime/packed_layout_test.cpp) and the GPU
// kernel checks (qgemv_check.cu). Plain C++: the CPU suite builds without the CUDA toolkit.
#pragma once
#include "quantbench/runtime/cuda/host/packed_layout.h"

namespace qb::test_formats {

using runtime::cuda::QuantSpec;
using runtime::cuda::WeightFormat;

inline constexpr QuantSpec kEveryPackedFormat[] = {
    {WeightFormat::BF16, 0, false},         {WeightFormat::W8A16, 0, false},
    {WeightFormat::W8A16, 32, false},       {WeightFormat::W8A16, 16, false},
    {WeightFormat::W8A16, 32, false, true}, {WeightFormat::W8A16, 16, false, true},  // (w8g32m, w8g16m)
    {WeightFormat::W4A16, 32, false},       {WeightFormat::W4A16, 32, true},
    {WeightFormat::W4A16, 128, false},      {WeightFormat::W4A16, 128, true},
    {WeightFormat::W4A16, 32, false, true}};  // (w4g32m)

}  // namespace qb::test_formats
