// Decode-time matrix products y = W x for n = 1..16 tokens with weights streamed from HBM in a packed
// form: BF16, W8A16 (int8, one f16 scale per output row) and W4A16 (4-bit, one f16 scale per group of
// 32 or 128 inputs, symmetric or with a 4-bit zero point per group). Decode reads every weight once, so
// the design goal is bytes: each weight byte is loaded once with a 16-byte load, dequantized in
// registers and fed straight to the tensor cores (mma.sync m16n8k16, f32 accumulation), which keeps
// the arithmetic off the critical path even at 16 tokens, where CUDA-core FMAs could not keep up with
// 4-bit weights at 3 TB/s.
//
// PACKED WEIGHT LAYOUT (shared by all formats; host pack()/unpack() in host/packed_layout.h are the plain
// reference).
// Rows are cut into row blocks of 16 (rb, padded with zero rows), inputs into chunks of 64 (c, padded
// with zero columns). One chunk of one row block is 16x64 elements, stored as LPC "vectors" of
// 32 lanes x 16 bytes (512 contiguous bytes each, so one warp-wide 16-byte load reads one vector):
//   weights[((rb * chunks + c) * LPC + v) * 32 + lane] : uint4
//   LPC = 4 (bf16), 2 (int8), 1 (int4).
// Inside a 16x64 chunk, k16 sub-tile s (0..3) covers columns 16s..16s+15. Lane l = 4*g + t holds, for
// each sub-tile, the 8 elements of the mma A fragment, element e (0..7) at
//   row = g + 8 * ((e >> 1) & 1),   column = 16 s + 2 t + (e & 1) + 8 * (e >> 2).
// Per format, where element e of sub-tile s sits inside the lane's 16 bytes of vector v:
//   bf16: v = s;        u16 number e                  (the four u32 are the A registers as they are)
//   int8: v = s >> 1;   byte 8 (s & 1) + e, storing q + 128 (q in -128..127); four bytes -> two f16
//                       via byte_perm with 0x64 high bytes (1024 + byte), minus 1152.
//   int4: v = 0;        u32 word s, nibble (e >> 1) + 4 (e & 1), storing q (0..15); a mask and an OR
//                       with 0x64006400 makes f16 1024 + q for two elements at once, minus (1024 + z).
// SCALES: int8: scales[row] f16, applied to the f32 sum; int8 with groups of 32 ("w8g32", GGUF Q8_0's
// blocks) or 16 ("w8g16", GGUF Q6_K's sub-blocks, values -32..31, and Q3_K's, -4..3): like int4 below, one f16 per (row,
// group), applied to each group's partial sum. int4: f16 per (row, group), stored so that a lane loads
// its two rows with one 4-byte load:  scales[((rb * groups + gi) * 8 + g) * 2 + h],
// row = 16 rb + g + 8 h. ZERO POINTS (asymmetric int4 only): one byte per (row, group), 0..15, kept in
// the scales array beside the scale pair, so that one 8-byte load brings both: entry (rb, gi, g) =
// scales bytes [8 ((rb * groups + gi) * 8 + g), + 8) = f16 s_g, f16 s_{g+8}, u8 z_g, u8 z_{g+8}, two zero
// bytes (the zeros array is empty). The padding byte per row and group adds 1.5% to w4g128a's bytes and
// 5.3% to w4g32a's; one load instead of two still made their steps 1-7% faster (docs/perf.md, session
// 34). Symmetric int4 uses z = 8. Weight: (q - z) * s; the kernel multiplies the exact integers (q - z)
// on the tensor cores and applies s to each group's f32 partial sum.
// MINS ("with mins", w4g32m: GGUF Q4_1 and Q4_K's form; w8g32m: Q5_K's and Q5_1's, values 0..31 as int8;
// w8g16m: Q2_K's, values 0..3 as int8): instead
// of a zero point, an f16 offset m per (row, group), stored like the scales (same index, f16 pairs) in the
// zeros array. Weight: q * s + m, which the kernel forms in f16 (one fused multiply-add per value: the
// exact value rounded once) and feeds to the tensor cores; the only formats whose decode products are not
// of exact weight values.
//
// ACTIVATIONS are packed too, by pack_activations() (a real decode step would have the preceding
// norm/activation kernel write this layout directly): x for n tokens, f16 (int formats) or bf16 (bf16
// weights), as mma B fragments, NT = ceil(n / 8) tiles of 8 tokens, zero past n and past n_in:
//   xfrag[((c * NT + j) * 32 + lane) * 8 + 2 s + h] : u32, lane = 4 g + t, token = 8 j + g,
//   holding x[token][64 c + 16 s + 2 t + 8 h + {0, 1}].
// Lanes whose token is past n skip the load, so x traffic grows with n, not with the tile (the lean
// kernels, qgemv_kernel.cuh, read token 8j's fragment instead: the addresses lanes 0-3 read, so no extra
// traffic and no predicate; those columns' outputs are never stored).
//
// OUTPUT: y[token * ldy + row] in f32 (the residual stream's precision; ldy = n_out unless qgemv() is
// given another row stride); every element for token < n, row < n_out is written by exactly one thread
// (no atomics, no pre-zeroing).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "quantbench/runtime/cuda/host/packed_layout.h"

namespace qb::runtime::cuda {

// (The formats, the plain matrix, the packed geometry and pack()/unpack(): host/packed_layout.h.)

// A packed matrix on the device. Owns its memory.
struct DeviceMatrix {
  PackedShape shape;
  std::shared_ptr<void> weights, scales, zeros;  // null where the format has none (zeros: the mins; asymmetric
                                                 // int4's zero points are in scales)
  size_t weight_bytes = 0, scale_bytes = 0, zero_bytes = 0;
  size_t bytes() const { return weight_bytes + scale_bytes + zero_bytes; }  // streamed per product
};
DeviceMatrix upload(const PackedHost& p);
// Uninitialized device storage of the packed sizes (benchmarks fill it with random bytes on the GPU).
DeviceMatrix allocate(const PackedShape& p);

// Random group parameters for a synthetic matrix (benchmarks, synthetic models; the weights are the
// caller's): scales uniform in [scale_lo, scale_hi), zero points 0..15 (asymmetric int4), mins uniform in
// [min_lo, min_hi) (formats with mins). Reproducible from `seed`.
void fill_random_group_params(const DeviceMatrix& d, uint64_t seed, float scale_lo, float scale_hi, float min_lo,
                              float min_hi, cudaStream_t stream);

// Activations: x is [n_tokens][n_in] f16 (int formats) or bf16 (bf16 weights), row-major.
size_t activation_frag_bytes(int64_t n_in, int n_tokens);
void pack_activations(const void* x, bool x_is_bf16, int n_tokens, int64_t n_in, void* xfrag,
                      cudaStream_t stream);

// The same fragments from f32 activations [n_tokens][n_in], rounded to bf16 (to_bf16) or f16 on the way:
// what the forward pass calls (its residual stream is f32), one kernel instead of a cast and a pack.
void pack_activations_f32(const float* x, bool to_bf16, int n_tokens, int64_t n_in, void* xfrag,
                          cudaStream_t stream);

// Packed matrix -> dense row-major [n_out][n_in] f16 or bf16 (each value (q - z) * s rounded once):
// the prefill path dequantizes a matrix into a scratch buffer, then runs a tensor-core GEMM on it.
void dequantize_packed(const DeviceMatrix& w, bool to_bf16, void* out, cudaStream_t stream);

// Launch shape. 0 = chosen from the problem (choose_config; a chosen row-block count brings the rule's
// half_step with it). rows_per_warp is in row blocks of 16.
struct QgemvConfig {
  int row_blocks_per_warp = 0;  // 1, 2 or 4: more reuses each activation fragment more
  int warps_per_block = 0;      // 1..16: the warps of a block split the input dimension
  // Programmatic dependent launch: this kernel may start (and load its weights) while the previous
  // kernel in the stream finishes; it waits for that kernel before reading x. Off by default: on an
  // H100, back to back in a graph, it made the 4096-row products slower (docs/perf.md) and gained
  // nothing overall; kept for the forward pass, where the previous kernel is not a matrix product.
  bool overlap_launch = false;
  // int4 at R = 1 or 2 only (elsewhere it is ignored, and qgemv() returns false): each step streams two
  // chunks (one group of 128, or four of 32) instead of four, so the kernel needs fewer registers and
  // more warps fit on an SM. Launch rules 6 and 7 turn it on for symmetric w4g128 with their own launch
  // shapes, rule 8 for every int4 format.
  bool half_step = false;
  // The symmetric w4g128 half step's 16-token kernel at R = 2 as it was before session 20 (a copy
  // between its two step buffers, 96 registers) instead of the ping-pong (128 registers): launch rule 6
  // sets it, so that QB_CUDA_LAUNCH_RULE=6 runs session 19's kernels and shapes for same-card A/B runs.
  bool copy_loop16 = false;
};
// rule 4: the launch shapes of step 4, 5: those of step 5, 6: 5 with the half step and its shapes for
// symmetric w4g128, 7: 6 with session 20's shapes for the 16-token half step, 8: 7 with the half step for
// every int4 format (all kept for same-run A/B measurements); 9: the current rules (8, with shapes of
// their own for int8 with group scales: w8g16, w8g32, w8g32m).
QgemvConfig choose_config(const PackedShape& shape, int n_tokens, int sm_count, int rule = 9);

// The gated activation fused into a gate|up product's epilogue (decode). The matrix's rows are gate and
// up in interleaved blocks of 16 (16 gate rows, then the same 16 columns' up rows; gated_act_out's
// interleave16), so a warp holding an even number of row blocks holds both sums of each of its columns.
// Instead of y the kernel writes act(gate) * up, rounded to f16 (or bf16), into the next product's
// activation fragments: the bits that y followed by gated_act_out(interleave16) writes (the same f32
// sums, the same formula: gated.cuh). Saves the activation kernel and its launch.
struct QgemvGatedOut {
  void* frag = nullptr;  // the next product's fragments (the layout above, n inputs, n_tokens tokens)
  int n = 0;             // columns: n_out / 2
  int act = 0;           // 0 SiLU, 1 GELU (tanh approximation)
  bool bf16 = false;     // fragments in bf16 (the next product has bf16 weights), else f16
};
// Whether a product of this shape, launched with `config` (after choose_config), can take the fused
// epilogue: an even row-block count per warp (so a warp holds gate and up blocks in pairs) and
// n = n_out / 2 a multiple of 64 (no padding columns for the epilogue to zero). Never with mins.
bool gated_epilogue_fits(const PackedShape& shape, const QgemvConfig& config);

// y[n_tokens][n_out] (f32) = W x, token t's outputs at y + t * ldy (0: n_out; a larger stride lets
// several products fill one output's rows, e.g. the parts of a q|k|v stack in different formats).
// xfrag from pack_activations with the matching dtype and n_in. Returns the launch shape that ran:
// warps_per_block is lowered where the kernel's registers do not allow that many threads in one block.
// With `gated` (config fully chosen, gated_epilogue_fits), y is not written: the fused epilogue above
// writes gated->frag instead.
QgemvConfig qgemv(const DeviceMatrix& w, const void* xfrag, int n_tokens, float* y, cudaStream_t stream,
           QgemvConfig config = {}, const QgemvGatedOut* gated = nullptr, int64_t ldy = 0);

}  // namespace qb::runtime::cuda
