/*
 * DSRIR patch attention as fused CUDA kernels, with no TensorRT dependency.
 *
 *   out = res * A[cell(h, w)] + skip        (skip optional)
 *   A   = sigmoid(W2 * relu(W1 * mean_cell(res) + b1) + b2)
 *
 * over a gridH x gridW grid of cells (H % gridH == 0, W % gridW == 0). res, skip and out are
 * NCHW, linear, float32 or float16; weights are float32 (W1 [hidden, C], b1 [hidden],
 * W2 [C, hidden], b2 [C]); every accumulation is float32. The TensorRT plugin, the PyTorch
 * extension and the kernel test all call these two functions.
 */
#pragma once

#include <cstddef>
#include <cuda_runtime_api.h>

namespace dsrir
{

enum class PatchAttentionType
{
    kFLOAT,
    kHALF,
};

struct PatchAttentionShape
{
    int n;
    int c;
    int h;
    int w;
    int gridH;
    int gridW;
    int hidden; //!< rows of W1 (C / 8 in DSRIR)
};

//! Bytes of device workspace patchAttentionForward needs (per-cell means and attention weights); 0 for a shape
//! patchAttentionCheckShape rejects. Depends on N, C and the grid only (patchAttentionShapeMath.h).
size_t patchAttentionWorkspaceSize(PatchAttentionShape const& shape);

//! Checks the shape (positive sizes, divisibility by the grid, N * C * gridH * gridW < 2^31 cells, int32 indexing
//! limits); returns cudaErrorInvalidValue if wrong.
cudaError_t patchAttentionCheckShape(PatchAttentionShape const& shape);

//! Enqueues the op on ``stream``. ``skip`` may be nullptr. ``workspace`` must hold
//! patchAttentionWorkspaceSize(shape) bytes, 16-byte aligned. Returns the first CUDA error of
//! the launches (checked after each launch), or cudaErrorInvalidValue for a bad shape.
cudaError_t patchAttentionForward(PatchAttentionType type, void const* res, void const* skip, float const* w1,
    float const* b1, float const* w2, float const* b2, void* out, PatchAttentionShape const& shape, void* workspace,
    cudaStream_t stream);

} // namespace dsrir
