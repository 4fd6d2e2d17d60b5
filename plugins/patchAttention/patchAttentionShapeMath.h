/*
 * Size arithmetic of the patch attention shared by the CUDA kernels (patchAttentionKernel.cu) and the TensorRT
 * plugin (patchAttentionPluginCommon.cpp). Header-only, standard C++ only: no TensorRT and no CUDA types, so that it
 * can be compiled and tested with a plain C++ compiler (tests/plugins/test_plugin_shape_math.py).
 *
 * The workspace depends on N, C and the grid alone, never on H and W: it holds two float arrays of
 * N * C * gridH * gridW values (per-cell sums/means, then attention weights), each rounded up to 256 bytes. A plugin
 * can therefore size it from the profile's kMAX N and C for every shape of the profile, whether or not kMAX's H and W
 * are multiples of the grid.
 */
#pragma once

#include <cstddef>
#include <cstdint>

namespace dsrir
{

//! Cells are indexed with int32 (block indices, work items of the cell sums): N * C * gridH * gridW must stay below
//! 2^31. At 2^31 or more, the cell-sum plan divides by zero on the host (0x7FFFFFFF / cells == 0 chunks per cell).
constexpr int64_t kPA_MAX_CELLS{INT64_C(0x7FFFFFFF)};

//! Each workspace region (sums, attention weights) starts on a 256-byte boundary.
constexpr size_t kPA_WORKSPACE_ALIGN{256};

//! N * C * gridH * gridW, or -1 when a factor is negative (unknown), a grid size is not positive, or the product
//! exceeds kPA_MAX_CELLS. N or C == 0 (empty tensor) gives 0. Every partial product is <= kPA_MAX_CELLS before the
//! next multiplication by a factor <= kPA_MAX_CELLS, so nothing overflows int64.
inline int64_t patchAttentionCellCount(int64_t n, int64_t c, int64_t gridH, int64_t gridW) noexcept
{
    if (n < 0 || c < 0 || gridH <= 0 || gridW <= 0)
    {
        return -1;
    }
    int64_t const factors[4] = {n, c, gridH, gridW};
    int64_t cells{1};
    for (int64_t const factor : factors)
    {
        if (factor > kPA_MAX_CELLS)
        {
            return -1;
        }
        cells *= factor;
        if (cells > kPA_MAX_CELLS)
        {
            return -1;
        }
    }
    return cells;
}

//! Bytes of one workspace region for `cells` float values (cells in [0, kPA_MAX_CELLS]).
inline size_t patchAttentionRegionBytes(int64_t cells) noexcept
{
    size_t const bytes = static_cast<size_t>(cells) * sizeof(float);
    return (bytes + kPA_WORKSPACE_ALIGN - 1) / kPA_WORKSPACE_ALIGN * kPA_WORKSPACE_ALIGN;
}

//! Workspace bytes for N, C and the grid (two regions), valid for any H and W; 0 when the cell count is invalid
//! (see patchAttentionCellCount) or zero.
inline size_t patchAttentionWorkspaceBytes(int64_t n, int64_t c, int64_t gridH, int64_t gridW) noexcept
{
    int64_t const cells = patchAttentionCellCount(n, c, gridH, gridW);
    return cells > 0 ? 2 * patchAttentionRegionBytes(cells) : 0;
}

//! Whether a known size (>= 0) is a multiple of a positive grid size; false for an unknown size (< 0) or grid <= 0.
inline bool patchAttentionDivisible(int64_t size, int64_t grid) noexcept
{
    return size >= 0 && grid > 0 && size % grid == 0;
}

} // namespace dsrir
