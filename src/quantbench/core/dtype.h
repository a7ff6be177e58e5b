// Scalar element types and their exact conversions to and from f32.
// f16 and bf16 conversions are bit-exact (round to nearest even), NaN and Inf preserved; they are the
// reference that SIMD paths are tested against.
#pragma once
#include <cstdint>
#include <cstring>
#include <string_view>

namespace qb {

enum class DType : uint8_t { F32, F16, BF16, F8_E4M3, I8, U8, I16, I32, I64, F64 };

std::string_view dtype_name(DType t);
size_t dtype_size(DType t);

inline uint32_t f32_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
inline float f32_from_bits(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

inline float bf16_to_f32(uint16_t h) { return f32_from_bits(uint32_t(h) << 16); }
uint16_t f32_to_bf16(float f);

// FP8 E4M3 (OCP "fn" variant: no infinities, 0x7f/0xff are NaN, max finite 448).
float f8e4m3_to_f32(uint8_t v);
uint8_t f32_to_f8e4m3(float f);  // round to nearest even, saturating to +-448

}  // namespace qb
