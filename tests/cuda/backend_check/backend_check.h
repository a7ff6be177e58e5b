// The parts of cuda_backend_check (the executable; its main and the account of what it checks are in
// ../cuda_backend_check.cpp), one file per kind of check, and what they share: the PASS / FAIL line and its
// tally, KL between two backends' next-token distributions, deterministic token scripts, a CUDA call that
// throws. Plain checks, no gtest: the GPU machine lacks it.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "quantbench/runtime/backend.h"

namespace backend_check {

// Prints "PASS what" or "FAIL what" and counts it.
void check(bool ok, const std::string& what);
int check_failures();
int check_count();

std::vector<double> softmax(std::span<const float> z);
// KL(ref || got) per row.
struct KlStats { double mean = 0, max = 0; size_t rows = 0; bool finite = true; };
void add_kl(KlStats& st, const qb::runtime::Logits& ref, const qb::runtime::Logits& got);
// n tokens below vocab from a linear congruential sequence: the same script for every backend.
std::vector<int32_t> tokens(int n, int32_t vocab, uint32_t seed);
int argmax(std::span<const float> z);
// Throws std::runtime_error naming `what` and the CUDA error unless e is cudaSuccess.
void cuda_ok(cudaError_t e, const char* what);

// kv_codes.cpp
void check_kv_codes();

// w8a8_products.cpp
void check_w8a8_exact(const std::string& path);
void check_w8a8_wide();
void check_fp8_fast_wide();
void check_fp8_prefill_wide();
void check_fp8_quantize_permuted();

// w8a8_codes.cpp
void check_act_quant_wide();
void check_act_quant_nonfinite();
void check_norm_codes();
void check_act_codes();

// model_vs_cpu.cpp
void check_repack(const std::string& path);
void check_w8a8_refuses_nonfinite(const std::string& path);
void run_model(const std::string& path, bool is_stories);

}  // namespace backend_check
