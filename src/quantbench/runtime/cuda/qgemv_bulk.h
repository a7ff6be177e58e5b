// The decode product for symmetric w4g128 with its weights streamed into shared memory by bulk copies
// (qgemv_bulk.cu says why). qgemv() runs it where QgemvConfig::bulk asks and qgemv_bulk_supported().
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

#include "quantbench/runtime/cuda/qgemv.h"

namespace qb::runtime::cuda {

bool qgemv_bulk_supported(const QuantSpec& spec, int row_blocks_per_warp);
// Dynamic shared memory of one block, and (stages_out) how many stages of the block's weights it holds.
size_t qgemv_bulk_smem(int row_blocks_per_warp, int warps, int n_tokens, int chunks, int* stages_out = nullptr);
// y[n_tokens][n_out] = W x, as qgemv(); `early`: the launch may overlap the previous kernel (PDL).
void qgemv_bulk(const DeviceMatrix& w, const void* xfrag, int n_tokens, float* y, cudaStream_t stream,
                int row_blocks_per_warp, int warps, bool early);

}  // namespace qb::runtime::cuda
