// The row-split decode kernel (qgemv_rows.cu): symmetric w4g128 at 1..16 tokens, the warps of a block on
// different rows over one input range whose activations the block holds in shared memory, the input cut
// among the blocks of a cluster (QgemvConfig::split_k). qgemv() runs it when the config asks for it.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "quantbench/runtime/cuda/qgemv.h"

namespace qb::runtime::cuda {

bool qgemv_rows_supports(const PackedShape& shape);
// Chunks of 64 inputs per split (even: whole groups of 128).
int qgemv_rows_per_split(const PackedShape& shape, int splits);
// Dynamic shared memory of a launch: the split's activation fragments and the warps' partial sums.
size_t qgemv_rows_smem(const PackedShape& shape, const QgemvConfig& config, int n_tokens);
// A launch shape for the row-split kernel (split_k 0: none fits): R = 2 at 9-16 tokens, else 1; 4 warps;
// the fewest splits giving at least blocks_per_sm blocks per SM (at most 8) whose inputs fit in shared memory.
QgemvConfig choose_rows_config(const PackedShape& shape, int n_tokens, int sm_count, int blocks_per_sm);
// y = W x as qgemv() documents, with config's row_blocks_per_warp (1, 2), warps_per_block and split_k (1,
// 2, 4, 8). Throws where the format is not symmetric w4g128 or the split's inputs do not fit in shared memory.
void qgemv_rows(const DeviceMatrix& w, const void* xfrag, int n_tokens, float* y, int64_t ldy, cudaStream_t stream,
                const QgemvConfig& config);

}  // namespace qb::runtime::cuda
