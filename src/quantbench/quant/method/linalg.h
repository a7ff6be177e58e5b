// The few dense linear-algebra steps GPTQ needs, in double precision on row-major n x n matrices.
// O(n^3) loops over contiguous rows (linalg.cpp says why); they run once per matrix at quantization time.
#pragma once
#include <cstdint>
#include <vector>

#include "quantbench/core/thread_pool.h"

namespace qb::quant {

// In-place lower Cholesky factor (A = L L^T; the upper triangle is zeroed). Returns false if A is not
// positive definite (a pivot <= 0 or not finite).
bool cholesky_lower(std::vector<double>& a, int64_t n, ThreadPool* pool = nullptr);

// Inverse of a lower-triangular matrix (returns a new lower-triangular matrix).
std::vector<double> invert_lower(const std::vector<double>& l, int64_t n, ThreadPool* pool = nullptr);

// GPTQ's preconditioner: the upper Cholesky factor U of H^-1 (H^-1 = U^T U), the matrix that
// torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True) gives, computed
// with one factorization and one triangular inverse (linalg.cpp says how).
// Returns false if H (or H^-1) is not positive definite.
// Rows (columns of the inverse) are spread over `pool` when given; the result does not depend on it.
bool inverse_cholesky_upper(const std::vector<double>& h, int64_t n, std::vector<double>& u,
                            ThreadPool* pool = nullptr);

// sum a[i] b[i] over n values, in 32 independent partial sums (vectorized per ISA; the order of
// the additions is fixed, so the result does not depend on the machine's ISA beyond FMA contraction).
double dot(const double* a, const double* b, int64_t n);

// y -= a * x over n values (GPTQ's error updates), vectorized per ISA.
void sub_scaled(double* y, const double* x, double a, int64_t n);

}  // namespace qb::quant
