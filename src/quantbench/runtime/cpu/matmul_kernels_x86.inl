// x86 kernel bodies shared by matmul_kernels_avx2.cpp and matmul_kernels_avx512.cpp; each includes
// this once, inside its own namespace, after defining the ISA-specific primitives:
//   dot_u8s8(u, s)            -> __m256i: 8 int32 sums of 4 adjacent u8*s8 products
//   dot_u8s8_x16(u, s, lo, hi) -> __m256i: the same with elements 0-15 times lo and 16-31 times hi
//   VF, kVfWidth, vf_zero(), vf_loadu(const float*), vf_load_f16(const uint8_t*), vf_fma(a, b, c),
//   vf_hsum(v)                 -> the float vector type used by the f32/f16 kernels.
// Integer products are exact; each 32-element block's int32 sum is scaled in float and accumulated
// in a vector, as llama.cpp's x86 kernels do. Kernels are templates on the token-tile size NT so each
// weight block is loaded and unpacked once for NT tokens.
// (No include guard and no includes: this is a fragment, not a header.)

inline float f16_scalar(uint16_t h) { return _cvtsh_ss(h); }

inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline __m256i load_act(const ActQ8Block& a) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.qs)); }

// 16 bytes of packed nibbles -> 32 unsigned bytes: low nibbles (elements 0-15), then high (16-31).
inline __m256i unpack_nibbles16(const uint8_t* qs) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i m = _mm_set1_epi8(0x0F);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m), _mm_and_si128(q, m));
}

inline __m256 fma_block(float scale, __m256i isum, __m256 acc) {
  return _mm256_fmadd_ps(_mm256_set1_ps(scale), _mm256_cvtepi32_ps(isum), acc);
}

template <int NT>
struct Q8_0Kernel {
  static void run(const uint8_t* wrow, int64_t n, const ActQ8Block* const* acts, float* out) {
    const auto* w = reinterpret_cast<const qformat::BlockQ8_0*>(wrow);
    __m256 acc[NT];
    for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / 32; ++b) {
      const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].qs));
      const __m256i uq = _mm256_sign_epi8(q, q);  // |q| as unsigned bytes; sign moves onto activations
      const float d = f16_scalar(w[b].d);
      for (int t = 0; t < NT; ++t) {
        const ActQ8Block& a = acts[t][b];
        acc[t] = fma_block(d * a.d, dot_u8s8(uq, _mm256_sign_epi8(load_act(a), q)), acc[t]);
      }
    }
    for (int t = 0; t < NT; ++t) out[t] = hsum256(acc[t]);
  }
};

// Q4_0: w = d*(q - 8), so dot = d*da*(sum q*a - 8*sum a).
template <int NT>
struct Q4_0Kernel {
  static void run(const uint8_t* wrow, int64_t n, const ActQ8Block* const* acts, float* out) {
    const auto* w = reinterpret_cast<const qformat::BlockQ4_0*>(wrow);
    __m256 acc[NT];
    float off[NT];
    for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps(), off[t] = 0;
    for (int64_t b = 0; b < n / 32; ++b) {
      const __m256i q = unpack_nibbles16(w[b].qs);
      const float d = f16_scalar(w[b].d);
      for (int t = 0; t < NT; ++t) {
        const ActQ8Block& a = acts[t][b];
        const float s = d * a.d;
        acc[t] = fma_block(s, dot_u8s8(q, load_act(a)), acc[t]);
        off[t] += d * a.dsum;
      }
    }
    for (int t = 0; t < NT; ++t) out[t] = hsum256(acc[t]) - 8 * off[t];
  }
};

// Q4_1: w = d*q + m, so dot = d*da*(sum q*a) + m*da*(sum a).
template <int NT>
struct Q4_1Kernel {
  static void run(const uint8_t* wrow, int64_t n, const ActQ8Block* const* acts, float* out) {
    const auto* w = reinterpret_cast<const qformat::BlockQ4_1*>(wrow);
    __m256 acc[NT];
    float off[NT];
    for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps(), off[t] = 0;
    for (int64_t b = 0; b < n / 32; ++b) {
      const __m256i q = unpack_nibbles16(w[b].qs);
      const float d = f16_scalar(w[b].d), m = f16_scalar(w[b].m);
      for (int t = 0; t < NT; ++t) {
        const ActQ8Block& a = acts[t][b];
        acc[t] = fma_block(d * a.d, dot_u8s8(q, load_act(a)), acc[t]);
        off[t] += m * a.dsum;
      }
    }
    for (int t = 0; t < NT; ++t) out[t] = hsum256(acc[t]) + off[t];
  }
};

// Q5's 32 fifth bits -> 32 bytes of 16 or 0: byte i takes qh byte i/8 (shuffle), keeps bit i%8.
inline __m256i q5_high_bits(const uint8_t* qh_bytes) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, 4);
  const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(int(qh)),
                                             _mm256_setr_epi64x(0, 0x0101010101010101LL, 0x0202020202020202LL,
                                                                0x0303030303030303LL));
  const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201ULL));
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
  return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

// Q5_0: w = d*(q - 16); Q5_1: w = d*q + m (q = nibble | fifth bit << 4).
template <bool kHasMin>
struct Q5Kernel {
  template <int NT>
  struct K {
    static void run(const uint8_t* wrow, int64_t n, const ActQ8Block* const* acts, float* out) {
      using Block = std::conditional_t<kHasMin, qformat::BlockQ5_1, qformat::BlockQ5_0>;
      const auto* w = reinterpret_cast<const Block*>(wrow);
      __m256 acc[NT];
      float off[NT];
      for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps(), off[t] = 0;
      for (int64_t b = 0; b < n / 32; ++b) {
        const __m256i q = _mm256_or_si256(unpack_nibbles16(w[b].qs), q5_high_bits(w[b].qh));
        const float d = f16_scalar(w[b].d);
        float m = -16 * d;
        if constexpr (kHasMin) m = f16_scalar(w[b].m);
        for (int t = 0; t < NT; ++t) {
          const ActQ8Block& a = acts[t][b];
          acc[t] = fma_block(d * a.d, dot_u8s8(q, load_act(a)), acc[t]);
          off[t] += m * a.dsum;
        }
      }
      for (int t = 0; t < NT; ++t) out[t] = hsum256(acc[t]) + off[t];
    }
  };
};

// Q4_K / Q5_K: sub-block j (32 elements, one activation block) has w = d*sc_j*q - dmin*m_j; Q5_K
// adds bit j of qh[l] as the fifth bit of element l.
template <bool kQ5>
struct KQuant45Kernel {
  template <int NT>
  struct K {
    static void run(const uint8_t* wrow, int64_t n, const ActQ8Block* const* acts, float* out) {
      using Block = std::conditional_t<kQ5, qformat::BlockQ5_K, qformat::BlockQ4_K>;
      const auto* w = reinterpret_cast<const Block*>(wrow);
      const __m256i mask = _mm256_set1_epi8(0x0F), sixteen = _mm256_set1_epi8(0x10);
      __m256 acc[NT];
      float off[NT];
      for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps(), off[t] = 0;
      for (int64_t b = 0; b < n / 256; ++b) {
        const float d = f16_scalar(w[b].d), dmin = f16_scalar(w[b].dmin);
        float dsc[8], dm[8];
        for (int j = 0; j < 8; ++j) {
          uint8_t sc, m;
          qformat::k4_scale_min(j, w[b].scales, &sc, &m);
          dsc[j] = d * float(sc);
          dm[j] = dmin * float(m);
        }
        __m256i qh = _mm256_setzero_si256();
        if constexpr (kQ5) qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].qh));
        for (int k = 0; k < 4; ++k) {
          const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].qs + 32 * k));
          __m256i lo = _mm256_and_si256(q, mask), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), mask);
          if constexpr (kQ5) {
            const __m256i b0 = _mm256_set1_epi8(char(1 << (2 * k))), b1 = _mm256_set1_epi8(char(1 << (2 * k + 1)));
            lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, b0), b0), sixteen));
            hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, b1), b1), sixteen));
          }
          for (int t = 0; t < NT; ++t) {
            const ActQ8Block& a0 = acts[t][8 * b + 2 * k];
            const ActQ8Block& a1 = acts[t][8 * b + 2 * k + 1];
            acc[t] = fma_block(dsc[2 * k] * a0.d, dot_u8s8(lo, load_act(a0)), acc[t]);
            acc[t] = fma_block(dsc[2 * k + 1] * a1.d, dot_u8s8(hi, load_act(a1)), acc[t]);
            off[t] += dm[2 * k] * a0.dsum + dm[2 * k + 1] * a1.dsum;
          }
        }
      }
      for (int t = 0; t < NT; ++t) out[t] = hsum256(acc[t]) - off[t];
    }
  };
};

// Q6_K: per 128-element half, quarter qd (one activation block) is
// (ql[l + 32*(qd%2)] >> 4*(qd/2)) & 0xF | ((qh[l] >> 2*qd) & 3) << 4, offset 32, and its two
// 16-element halves have int8 scales sc[8h + 2qd] and sc[8h + 2qd + 1].
template <int NT>
struct Q6_KKernel {
  static void run(const uint8_t* wrow, int64_t n, const ActQ8Block* const* acts, float* out) {
    const auto* w = reinterpret_cast<const qformat::BlockQ6_K*>(wrow);
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(0x30);
    __m256 acc[NT];
    float off[NT];
    for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps(), off[t] = 0;
    for (int64_t b = 0; b < n / 256; ++b) {
      const float d = f16_scalar(w[b].d);
      const int8_t* sc = w[b].scales;
      for (int h = 0; h < 2; ++h) {
        const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].ql + 64 * h));
        const __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].ql + 64 * h + 32));
        const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].qh + 32 * h));
        __m256i q[4];
        q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m2));
        q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m2));
        q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(qh, m2));
        q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                               _mm256_and_si256(_mm256_srli_epi16(qh, 2), m2));
        for (int qd = 0; qd < 4; ++qd) {
          const int s_lo = sc[8 * h + 2 * qd], s_hi = sc[8 * h + 2 * qd + 1];
          for (int t = 0; t < NT; ++t) {
            const ActQ8Block& a = acts[t][8 * b + 4 * h + qd];
            const float s = d * a.d;
            acc[t] = fma_block(s, dot_u8s8_x16(q[qd], load_act(a), s_lo, s_hi), acc[t]);
            off[t] += s * float(s_lo * a.sum16[0] + s_hi * a.sum16[1]);
          }
        }
      }
    }
    for (int t = 0; t < NT; ++t) out[t] = hsum256(acc[t]) - 32 * off[t];
  }
};

// Float weights: NT tokens share each weight vector load; two accumulators per token hide FMA latency.
template <bool kF16>
inline VF load_w(const uint8_t* wrow, int64_t i) {
  if constexpr (kF16) return vf_load_f16(wrow + 2 * i);
  else return vf_loadu(reinterpret_cast<const float*>(wrow) + i);
}
template <bool kF16>
inline float load_w1(const uint8_t* wrow, int64_t i) {
  if constexpr (kF16) {
    uint16_t h;
    std::memcpy(&h, wrow + 2 * i, 2);
    return f16_scalar(h);
  } else {
    float f;
    std::memcpy(&f, wrow + 4 * i, 4);
    return f;
  }
}

template <bool kF16>
struct FloatKernel {
  template <int NT>
  struct K {
    static void run(const uint8_t* wrow, int64_t n, const float* const* xs, float* out) {
      VF acc0[NT], acc1[NT];
      for (int t = 0; t < NT; ++t) acc0[t] = vf_zero(), acc1[t] = vf_zero();
      int64_t i = 0;
      for (; i + 2 * kVfWidth <= n; i += 2 * kVfWidth) {
        const VF w0 = load_w<kF16>(wrow, i), w1 = load_w<kF16>(wrow, i + kVfWidth);
        for (int t = 0; t < NT; ++t) {
          acc0[t] = vf_fma(w0, vf_loadu(xs[t] + i), acc0[t]);
          acc1[t] = vf_fma(w1, vf_loadu(xs[t] + i + kVfWidth), acc1[t]);
        }
      }
      for (; i + kVfWidth <= n; i += kVfWidth) {
        const VF w0 = load_w<kF16>(wrow, i);
        for (int t = 0; t < NT; ++t) acc0[t] = vf_fma(w0, vf_loadu(xs[t] + i), acc0[t]);
      }
      for (int t = 0; t < NT; ++t) {
        float s = vf_hsum(acc0[t]) + vf_hsum(acc1[t]);
        for (int64_t j = i; j < n; ++j) s += load_w1<kF16>(wrow, j) * xs[t][j];
        out[t] = s;
      }
    }
  };
};

// quantize_activations_q8 with 256-bit vectors: the same operations (amax, 127/amax, x*id, round
// half to even), so the blocks are identical to the scalar definition's.
void quantize_act_x86(const float* x, int64_t n, ActQ8Block* out) {
  const __m256 sign = _mm256_set1_ps(-0.0f), inf = _mm256_set1_ps(INFINITY);
  for (int64_t b = 0; b < n / 32; ++b, x += 32) {
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps(), bad = _mm256_setzero_ps();
    for (int k = 0; k < 4; ++k) {
      v[k] = _mm256_loadu_ps(x + 8 * k);
      const __m256 av = _mm256_andnot_ps(sign, v[k]);
      amax = _mm256_max_ps(amax, av);
      bad = _mm256_or_ps(bad, _mm256_cmp_ps(av, inf, _CMP_NLT_UQ));  // NaN or Inf
    }
    if (_mm256_movemask_ps(bad) != 0) {  // as the scalar definition: a NaN block
      out[b] = ActQ8Block{};
      out[b].d = out[b].dsum = NAN;
      continue;
    }
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    const float amax_s = _mm_cvtss_f32(m);
    ActQ8Block& a = out[b];
    a.d = amax_s / 127.0f;
    const __m256 id = _mm256_set1_ps(amax_s > 0 ? 127.0f / amax_s : 0.0f);
    __m256i q[4];
    for (int k = 0; k < 4; ++k)
      q[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[k], id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    // Sums of each 16-element half, then pack 32 x int32 -> 32 x int8 (packs work per 128-bit lane,
    // so a final dword permute restores element order).
    for (int h = 0; h < 2; ++h) {
      const __m256i s = _mm256_add_epi32(q[2 * h], q[2 * h + 1]);
      __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
      s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
      s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
      a.sum16[h] = int16_t(_mm_cvtsi128_si32(s4));
    }
    a.dsum = a.d * float(a.sum16[0] + a.sum16[1]);
    const __m256i p01 = _mm256_packs_epi32(q[0], q[1]), p23 = _mm256_packs_epi32(q[2], q[3]);
    const __m256i p = _mm256_packs_epi16(p01, p23);
    const __m256i ordered = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(a.qs), ordered);
  }
}

template <template <int> class K, int NT, typename X>
void rows_nt(const uint8_t* w, size_t row_bytes, int64_t n_rows, int64_t n, const X* const* xs, float* y, int64_t ys) {
  float out[NT];
  for (int64_t r = 0; r < n_rows; ++r) {
    K<NT>::run(w + size_t(r) * row_bytes, n, xs, out);
    for (int t = 0; t < NT; ++t) y[t * ys + r] = out[t];
  }
}

template <template <int> class K, typename X>
void dispatch_tile(const uint8_t* w, size_t row_bytes, int64_t n_rows, int64_t n, const X* const* xs, int nt,
                   float* y, int64_t ys) {
  switch (nt) {
    case 1: rows_nt<K, 1>(w, row_bytes, n_rows, n, xs, y, ys); break;
    case 2: rows_nt<K, 2>(w, row_bytes, n_rows, n, xs, y, ys); break;
    case 3: rows_nt<K, 3>(w, row_bytes, n_rows, n, xs, y, ys); break;
    default: rows_nt<K, 4>(w, row_bytes, n_rows, n, xs, y, ys); break;
  }
}
static_assert(kMaxTileTokens == 4);

inline KernelTable make_table(const char* int_dot_label, const char* float_label) {
  return KernelTable{int_dot_label, float_label,
                     dispatch_tile<FloatKernel<false>::K, float>,
                     dispatch_tile<FloatKernel<true>::K, float>,
                     dispatch_tile<Q8_0Kernel, ActQ8Block>,
                     dispatch_tile<Q4_0Kernel, ActQ8Block>,
                     dispatch_tile<Q4_1Kernel, ActQ8Block>,
                     dispatch_tile<Q5Kernel<false>::K, ActQ8Block>,
                     dispatch_tile<Q5Kernel<true>::K, ActQ8Block>,
                     dispatch_tile<KQuant45Kernel<false>::K, ActQ8Block>,
                     dispatch_tile<KQuant45Kernel<true>::K, ActQ8Block>,
                     dispatch_tile<Q6_KKernel, ActQ8Block>,
                     quantize_act_x86};
}
