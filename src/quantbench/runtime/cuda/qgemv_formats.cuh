// The packed formats' compile-time traits, shared by the decode products (qgemv_kernel.cuh) and the packed
// layout's other device code (qgemv_layout.cu): what the kernels' template arguments F (0 bf16, 1 int8,
// 2 int4) and OFS stand for in the layout documented in qgemv.h.
#pragma once

namespace qb::runtime::cuda {

// Format traits: 16-byte vectors per chunk (LPC) and whether the products take bf16 (kBf16).
template <int F> struct Fmt;
template <> struct Fmt<0> { static constexpr int LPC = 4; static constexpr bool kBf16 = true; };   // bf16
template <> struct Fmt<1> { static constexpr int LPC = 2; static constexpr bool kBf16 = false; };  // int8
template <> struct Fmt<2> { static constexpr int LPC = 1; static constexpr bool kBf16 = false; };  // int4

// int4's per-group offsets (the kernels' OFS): none (z = 8), zero points, or f16 mins (qgemv.h).
enum : int { kNoOffset = 0, kZeroPoints = 1, kMins = 2 };

}  // namespace qb::runtime::cuda
