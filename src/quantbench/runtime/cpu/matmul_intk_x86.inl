// INTk kernel bodies shared by matmul_intk_avx2.cpp and matmul_intk_avx512.cpp; each includes this
// once, inside its own namespace, after defining:
//   dot_u8s8(u, s)      -> __m256i: 8 int32 sums of 4 adjacent u8*s8 products (u <= 15 here)
//   dot_code8(c, s)     -> __m256i: the same for int8 codes c (u8, 0..255) as (c - kInt8Offset) * s
//   kInt8Offset         the offset dot_code8 subtracts (128 where the product path saturates past
//                       int16, 0 with VPDPBUSD)
//   kLabel              the instructions used, for the Manifest
// Codes are unpacked byte-parallel from the QuantizedTensor row (LSB-first bit stream), in the block
// order act_permutation() gives the activations. Integer sums are exact; each block's sum is scaled
// by its activation d in a float vector per group, the group's vector by the group scale, and the
// zero point (minus the offset) times the group's sum of dsum is subtracted once per row.
// (No include guard and no includes: this is a fragment, not a header.)

inline float intk_hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// 32 codes of block b, as unsigned bytes, in act_permutation(BITS) order.
template <int BITS>
inline __m256i unpack32(const uint8_t* row, int64_t b) {
  if constexpr (BITS == 4) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + b * 16));
    const __m128i m = _mm_set1_epi8(0x0F);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m), _mm_and_si128(v, m));
  } else if constexpr (BITS == 2) {
    int64_t w;
    std::memcpy(&w, row + b * 8, 8);
    const __m256i v = _mm256_srlv_epi64(_mm256_set1_epi64x(w), _mm256_set_epi64x(6, 4, 2, 0));
    return _mm256_and_si256(v, _mm256_set1_epi8(0x03));
  } else if constexpr (BITS == 8) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + b * 32));
  } else {  // 3 bits: 4 runs of 8 codes in 3 bytes each, natural order
    alignas(32) uint8_t c[32];
    const uint8_t* p = row + b * 12;
    for (int j = 0; j < 4; ++j, p += 3) {
      const uint32_t w = uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16;
      for (int i = 0; i < 8; ++i) c[8 * j + i] = uint8_t((w >> (3 * i)) & 7);
    }
    return _mm256_load_si256(reinterpret_cast<const __m256i*>(c));
  }
}

inline float intk_scale(const uint8_t* p, bool bf16) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  if (bf16) {
    const uint32_t u = uint32_t(h) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
  return _cvtsh_ss(h);
}

template <int BITS, int NT>
void intk_rows(const quant::QuantizedTensor& q, int64_t r0, int64_t r1, const ActQ8Block* const* acts, float* y,
               int64_t y_stride) {
  constexpr int kOff = BITS == 8 ? kInt8Offset : 0;
  const int64_t g = q.group_cols(), groups = q.groups_per_row();
  const size_t rb = q.row_bytes();
  const bool bf16 = q.layout.scale_type == quant::ScaleType::BF16;
  const bool asym = q.layout.asymmetric;
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = q.codes.data() + size_t(r) * rb;
    __m256 acc[NT];
    float corr[NT];
    for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps(), corr[t] = 0;
    for (int64_t k = 0; k < groups; ++k) {
      const size_t si = size_t(r * groups + k);  // Channel: groups == 1, index r
      const float s = intk_scale(&q.scales[si * 2], bf16);
      const int z = (asym ? int(q.zeros[si]) : (1 << (BITS - 1))) - kOff;
      __m256 gacc[NT];
      float gdsum[NT];
      for (int t = 0; t < NT; ++t) gacc[t] = _mm256_setzero_ps(), gdsum[t] = 0;
      const int64_t b1 = std::min(q.cols, (k + 1) * g) / 32;
      for (int64_t b = k * g / 32; b < b1; ++b) {
        const __m256i c = unpack32<BITS>(row, b);
        for (int t = 0; t < NT; ++t) {
          const ActQ8Block& a = acts[t][b];
          const __m256i av = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.qs));
          __m256i isum;
          if constexpr (BITS == 8) isum = dot_code8(c, av);
          else isum = dot_u8s8(c, av);
          gacc[t] = _mm256_fmadd_ps(_mm256_set1_ps(a.d), _mm256_cvtepi32_ps(isum), gacc[t]);
          gdsum[t] += a.dsum;
        }
      }
      const __m256 sv = _mm256_set1_ps(s);
      for (int t = 0; t < NT; ++t) {
        acc[t] = _mm256_fmadd_ps(sv, gacc[t], acc[t]);
        corr[t] += s * float(z) * gdsum[t];
      }
    }
    for (int t = 0; t < NT; ++t) y[t * y_stride + r] = intk_hsum(acc[t]) - corr[t];
  }
}

template <int BITS>
void intk_dot(const quant::QuantizedTensor& q, int64_t r0, int64_t r1, const ActQ8Block* const* acts, int nt, float* y,
              int64_t y_stride) {
  switch (nt) {
    case 1: return intk_rows<BITS, 1>(q, r0, r1, acts, y, y_stride);
    case 2: return intk_rows<BITS, 2>(q, r0, r1, acts, y, y_stride);
    case 3: return intk_rows<BITS, 3>(q, r0, r1, acts, y, y_stride);
    default: return intk_rows<BITS, 4>(q, r0, r1, acts, y, y_stride);
  }
}
static_assert(kMaxTileTokens == 4, "intk_dot instantiates tiles of 1..4 tokens");

inline IntkKernelTable make_intk_table() {
  return IntkKernelTable{kLabel, true, intk_dot<2>, intk_dot<3>, intk_dot<4>, intk_dot<8>};
}
