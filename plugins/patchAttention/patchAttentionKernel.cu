/*
 * DSRIR patch attention: three kernels enqueued on one stream, nothing synchronised.
 *
 *   1. cellSumKernel   sums of res over every cell into sums[N, C, gridH, gridW] (float). Each cell is split
 *                      into row chunks ("items", one block each) so that even a 1x1 grid fills the GPU; a
 *                      block reduces its chunk (warp shuffles, then shared memory) and atomically adds the
 *                      result into sums, which cudaMemsetAsync zeroes first. The float atomics make the
 *                      summation order, and so the last bits of the means, vary from run to run.
 *   2. mlpKernel       one block per (n, cell): means = sums / area, hidden = relu(W1 means + b1),
 *                      attn = sigmoid(W2 hidden + b2) into attn[N, C, gridH, gridW] (float).
 *   3. scaleAddKernel  out = res * attn[cell] (+ skip), a grid-stride loop over the whole tensor.
 *
 * Kernels 1 and 3 read V elements at a time (16-byte vectors when the cell width and the pointers allow,
 * else 8, 4 bytes or scalars); a vector never crosses a cell edge because the cell width is a multiple of V.
 * Their per-thread loops are __host__ __device__ functions so that the indexing can be exercised on a CPU.
 * Workspace layout: sums, then attn, each rounded up to 256 bytes (patchAttentionShapeMath.h, shared with the plugin).
 */
#include "patchAttentionKernel.h"
#include "patchAttentionShapeMath.h"

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

namespace dsrir
{
namespace
{

constexpr int kSumThreads = 256;
constexpr int kMlpThreads = 128;
constexpr int kScaleThreads = 256;
static_assert(kSumThreads == kScaleThreads, "forward() sizes both grids from one resident-block count");
static_assert(kSumThreads % 32 == 0 && kMlpThreads % 32 == 0, "whole warps: the reductions shuffle full warps");
constexpr int kWarp = 32;
// Rows and planes are indexed with int: keep them under 2^30 so that a loop index plus a grid stride cannot
// overflow either. Cell counts (no grid-stride loop) stay under 2^31: kPA_MAX_CELLS, patchAttentionShapeMath.h.
constexpr long long kIndexLimit = 1LL << 30;
// The MLP keeps the C means and the hidden activations in shared memory: at most the default 48 KB.
constexpr long long kMaxMlpFloats = 48 * 1024 / sizeof(float);
// A work item of the cell sums holds at least this many elements (unless its whole cell is smaller), so a
// block's fixed cost (reduction, atomic) stays small against its reads ...
constexpr long long kMinItemElems = 2048;
// ... and at most this many when the tensor is large, so the last wave of blocks is short.
constexpr long long kMaxItemElems = 16384;

//! V elements loaded or stored as one access. Loops over its V elements carry no #pragma unroll (the host
//! compiler warns about it in __host__ __device__ code); nvcc unrolls such constant-count loops anyway.
template <typename T, int V>
struct alignas(sizeof(T) * V) Vec
{
    T v[V];
};

//! Elements of T in one 16-byte access.
template <typename T>
struct MaxVec
{
    static constexpr int value = static_cast<int>(16 / sizeof(T));
};

__host__ __device__ inline float toFloat(float x)
{
    return x;
}

__host__ __device__ inline float toFloat(__half x)
{
    return __half2float(x);
}

__host__ __device__ inline void fromFloat(float& dst, float x)
{
    dst = x;
}

__host__ __device__ inline void fromFloat(__half& dst, float x)
{
    dst = __float2half_rn(x);
}

template <typename T, int V>
__host__ __device__ inline Vec<T, V> loadVec(T const* p)
{
    return *reinterpret_cast<Vec<T, V> const*>(p);
}

long long ceilDiv(long long a, long long b)
{
    return (a + b - 1) / b;
}

long long cellCount(PatchAttentionShape const& s)
{
    return static_cast<long long>(s.n) * s.c * s.gridH * s.gridW;
}

bool aligned(void const* p, size_t bytes)
{
    return p == nullptr || reinterpret_cast<uintptr_t>(p) % bytes == 0;
}

//! Widest V (16 bytes down to one element) with cellW % V == 0 and all non-null pointers V-aligned.
template <typename T>
int vectorWidth(int cellW, void const* a, void const* b, void const* c)
{
    for (int v = MaxVec<T>::value; v > 1; v /= 2)
    {
        size_t const bytes = v * sizeof(T);
        if (cellW % v == 0 && aligned(a, bytes) && aligned(b, bytes) && aligned(c, bytes))
        {
            return v;
        }
    }
    return 1;
}

// ------------------------------------------------------------------------------------------------ cell sums

struct CellSumArgs
{
    int h, w;
    int cellH, cellW;
    int gridH, gridW;
    int rowsPerChunk; //!< rows of a cell per work item
    int chunks;       //!< work items per cell
};

//! The part of work item `item` (row chunk item % chunks of cell item / chunks) that thread `tid` of
//! `nthreads` sums: consecutive threads read consecutive V-vectors of a cell row (coalesced), wrapping to
//! the next row; (row, column) advance incrementally, with no division in the loop.
template <typename T, int V>
__host__ __device__ float cellChunkPartialSum(
    T const* __restrict__ res, CellSumArgs const& a, int item, int tid, int nthreads)
{
    int const cell = item / a.chunks;
    int const chunk = item - cell * a.chunks;
    int const cellsPerPlane = a.gridH * a.gridW;
    int const plane = cell / cellsPerPlane; // n * C + c
    int const inPlane = cell - plane * cellsPerPlane;
    int const gy = inPlane / a.gridW;
    int const gx = inPlane - gy * a.gridW;
    int const row0 = chunk * a.rowsPerChunk;
    int const rows = a.cellH - row0 < a.rowsPerChunk ? a.cellH - row0 : a.rowsPerChunk;
    int const rowVecs = a.cellW / V;
    int const count = rows * rowVecs;

    T const* base = res + (static_cast<long long>(plane) * a.h + static_cast<long long>(gy) * a.cellH + row0) * a.w
        + static_cast<long long>(gx) * a.cellW;
    int const strideRows = nthreads / rowVecs;
    int const strideCols = nthreads - strideRows * rowVecs;
    long long const strideOff = static_cast<long long>(strideRows) * a.w + strideCols * V;
    long long const wrapOff = a.w - static_cast<long long>(a.cellW); // from one past the cell row to the next
    int col = tid % rowVecs;
    long long off = static_cast<long long>(tid / rowVecs) * a.w + col * V;

    float sum = 0.F;
    for (int i = tid; i < count; i += nthreads)
    {
        Vec<T, V> const x = loadVec<T, V>(base + off);
        for (int k = 0; k < V; ++k)
        {
            sum += toFloat(x.v[k]);
        }
        col += strideCols;
        off += strideOff;
        if (col >= rowVecs)
        {
            col -= rowVecs;
            off += wrapOff;
        }
    }
    return sum;
}

__device__ inline float warpSum(float v)
{
#pragma unroll
    for (int offset = kWarp / 2; offset > 0; offset /= 2)
    {
        v += __shfl_xor_sync(0xFFFFFFFFU, v, offset);
    }
    return v;
}

//! Sum over the block (blockDim.x == kSumThreads); valid in thread 0.
__device__ inline float blockSum(float v)
{
    __shared__ float warpSums[kSumThreads / kWarp];
    int const lane = threadIdx.x % kWarp;
    int const warp = threadIdx.x / kWarp;
    v = warpSum(v);
    if (lane == 0)
    {
        warpSums[warp] = v;
    }
    __syncthreads();
    if (warp == 0)
    {
        v = warpSum(lane < kSumThreads / kWarp ? warpSums[lane] : 0.F);
    }
    return v;
}

template <typename T, int V>
__global__ void __launch_bounds__(kSumThreads) cellSumKernel(T const* __restrict__ res, CellSumArgs a, float* sums)
{
    float const part = cellChunkPartialSum<T, V>(res, a, blockIdx.x, threadIdx.x, kSumThreads);
    float const total = blockSum(part);
    if (threadIdx.x == 0)
    {
        // item / chunks is the cell's linear index in [N, C, gridH, gridW]
        atomicAdd(sums + blockIdx.x / a.chunks, total);
    }
}

struct CellSumPlan
{
    int rowsPerChunk;
    int chunks;
    int items;
};

//! Splits every cell into chunks of whole rows: enough items for two waves of resident blocks and items
//! of at most kMaxItemElems on large tensors, but none under kMinItemElems unless its cell is smaller.
CellSumPlan planCellSum(PatchAttentionShape const& s, long long residentBlocks)
{
    int const cellH = s.h / s.gridH;
    long long const cellArea = static_cast<long long>(cellH) * (s.w / s.gridW);
    long long const cells = cellCount(s);
    long long const total = cells * cellArea;
    long long const wanted = std::max(2 * residentBlocks, ceilDiv(total, kMaxItemElems));
    long long const maxBySize = std::max(cellArea / kMinItemElems, 1LL);
    long long const maxByGrid = kPA_MAX_CELLS / cells; // >= 1 because patchAttentionCheckShape keeps cells <= 2^31 - 1
    long long const chunks = std::min({ceilDiv(wanted, cells), maxBySize, maxByGrid, static_cast<long long>(cellH)});
    int const rowsPerChunk = static_cast<int>(ceilDiv(cellH, chunks));
    int const finalChunks = static_cast<int>(ceilDiv(cellH, rowsPerChunk));
    return {rowsPerChunk, finalChunks, static_cast<int>(cells * finalChunks)};
}

// ------------------------------------------------------------------------------------------------ MLP

//! One block per (n, cell): the C means and the hidden activations live in shared memory; one warp per
//! hidden unit for W1 (lanes split C), one thread per channel for W2.
__global__ void __launch_bounds__(kMlpThreads) mlpKernel(float const* sums, float const* __restrict__ w1,
    float const* __restrict__ b1, float const* __restrict__ w2, float const* __restrict__ b2, float* attn, int c,
    int hidden, int cellsPerPlane, float area)
{
    extern __shared__ float shared[];
    float* mean = shared;
    float* act = shared + c;
    int const n = blockIdx.x / cellsPerPlane;
    int const cell = blockIdx.x - n * cellsPerPlane;
    // index of (n, 0, cell); channels are cellsPerPlane apart
    long long const base = static_cast<long long>(n) * c * cellsPerPlane + cell;

    for (int k = threadIdx.x; k < c; k += kMlpThreads)
    {
        mean[k] = sums[base + static_cast<long long>(k) * cellsPerPlane] / area;
    }
    __syncthreads();

    int const lane = threadIdx.x % kWarp;
    for (int j = threadIdx.x / kWarp; j < hidden; j += kMlpThreads / kWarp) // warp-uniform bound
    {
        float const* row = w1 + static_cast<long long>(j) * c;
        float acc = 0.F;
        for (int k = lane; k < c; k += kWarp)
        {
            acc = fmaf(row[k], mean[k], acc);
        }
        acc = warpSum(acc);
        if (lane == 0)
        {
            act[j] = fmaxf(acc + (b1 != nullptr ? b1[j] : 0.F), 0.F);
        }
    }
    __syncthreads();

    for (int k = threadIdx.x; k < c; k += kMlpThreads)
    {
        float const* row = w2 + static_cast<long long>(k) * hidden;
        float acc = b2 != nullptr ? b2[k] : 0.F;
        for (int j = 0; j < hidden; ++j)
        {
            acc = fmaf(row[j], act[j], acc);
        }
        attn[base + static_cast<long long>(k) * cellsPerPlane] = 1.F / (1.F + expf(-acc));
    }
}

// ------------------------------------------------------------------------------------------------ scale and add

struct ScaleArgs
{
    int h, w;
    int cellH, cellW;
    int gridH, gridW;
    long long rows; //!< N * C * H
};

//! The grid-stride loop of one thread over V-vectors first, first + stride, ...: (row, column) advance
//! incrementally. Each element is read and written by the same thread, so out may equal res or skip.
template <typename T, int V>
__host__ __device__ void scaleAddRange(T const* res, T const* skip, float const* attn, T* out, ScaleArgs const& a,
    long long first, long long stride)
{
    int const rowVecs = a.w / V;
    long long row = first / rowVecs;
    int col = static_cast<int>(first - row * rowVecs);
    long long const strideRows = stride / rowVecs;
    int const strideCols = static_cast<int>(stride - strideRows * rowVecs);
    while (row < a.rows)
    {
        int const r = static_cast<int>(row); // rows < 2^30
        int const plane = r / a.h;
        int const y = r - plane * a.h;
        int const x = col * V;
        float const scale = attn[(static_cast<long long>(plane) * a.gridH + y / a.cellH) * a.gridW + x / a.cellW];
        long long const off = row * a.w + x;
        Vec<T, V> const in = loadVec<T, V>(res + off);
        Vec<T, V> result;
        if (skip != nullptr)
        {
            Vec<T, V> const add = loadVec<T, V>(skip + off);
            for (int k = 0; k < V; ++k)
            {
                fromFloat(result.v[k], fmaf(toFloat(in.v[k]), scale, toFloat(add.v[k])));
            }
        }
        else
        {
            for (int k = 0; k < V; ++k)
            {
                fromFloat(result.v[k], toFloat(in.v[k]) * scale);
            }
        }
        *reinterpret_cast<Vec<T, V>*>(out + off) = result;

        col += strideCols;
        row += strideRows;
        if (col >= rowVecs)
        {
            col -= rowVecs;
            ++row;
        }
    }
}

template <typename T, int V>
__global__ void __launch_bounds__(kScaleThreads)
    scaleAddKernel(T const* res, T const* skip, float const* attn, T* out, ScaleArgs a)
{
    long long const first = static_cast<long long>(blockIdx.x) * kScaleThreads + threadIdx.x;
    scaleAddRange<T, V>(res, skip, attn, out, a, first, static_cast<long long>(gridDim.x) * kScaleThreads);
}

// ------------------------------------------------------------------------------------------------ launches

//! Calls launcher.template launch<V>() for the run-time width (a power of two <= V).
template <int V>
struct WidthDispatch
{
    template <typename Launcher>
    static cudaError_t run(int width, Launcher const& launcher)
    {
        return width >= V ? launcher.template launch<V>() : WidthDispatch<V / 2>::run(width, launcher);
    }
};

template <>
struct WidthDispatch<1>
{
    template <typename Launcher>
    static cudaError_t run(int /*width*/, Launcher const& launcher)
    {
        return launcher.template launch<1>();
    }
};

template <typename T>
struct CellSumLauncher
{
    T const* res;
    CellSumArgs args;
    float* sums;
    int blocks;
    cudaStream_t stream;

    template <int V>
    cudaError_t launch() const
    {
        cellSumKernel<T, V><<<blocks, kSumThreads, 0, stream>>>(res, args, sums);
        return cudaGetLastError();
    }
};

template <typename T>
struct ScaleAddLauncher
{
    T const* res;
    T const* skip;
    float const* attn;
    T* out;
    ScaleArgs args;
    long long residentBlocks;
    cudaStream_t stream;

    template <int V>
    cudaError_t launch() const
    {
        // one wave of resident blocks, each looping, unless the tensor needs fewer
        long long const vectors = args.rows * (args.w / V);
        int const blocks = static_cast<int>(std::min(ceilDiv(vectors, kScaleThreads), residentBlocks));
        scaleAddKernel<T, V><<<blocks, kScaleThreads, 0, stream>>>(res, skip, attn, out, args);
        return cudaGetLastError();
    }
};

//! Blocks of `threads` threads the current device holds at once.
cudaError_t residentBlocks(int threads, long long* blocks)
{
    int device = 0;
    int sms = 0;
    int threadsPerSm = 0;
    cudaError_t err = cudaGetDevice(&device);
    if (err == cudaSuccess)
    {
        err = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
    }
    if (err == cudaSuccess)
    {
        err = cudaDeviceGetAttribute(&threadsPerSm, cudaDevAttrMaxThreadsPerMultiProcessor, device);
    }
    *blocks = std::max(sms, 1) * std::max(threadsPerSm / threads, 1);
    return err;
}

template <typename T>
cudaError_t forward(T const* res, T const* skip, float const* w1, float const* b1, float const* w2, float const* b2,
    T* out, PatchAttentionShape const& s, void* workspace, cudaStream_t stream)
{
    int const cellH = s.h / s.gridH;
    int const cellW = s.w / s.gridW;
    long long const cells = cellCount(s);
    float* sums = static_cast<float*>(workspace);
    float* attn = reinterpret_cast<float*>(static_cast<char*>(workspace) + patchAttentionRegionBytes(cells));

    long long resident = 0;
    cudaError_t err = residentBlocks(kSumThreads, &resident);
    if (err != cudaSuccess)
    {
        return err;
    }
    err = cudaMemsetAsync(sums, 0, cells * sizeof(float), stream);
    if (err != cudaSuccess)
    {
        return err;
    }

    CellSumPlan const plan = planCellSum(s, resident);
    CellSumArgs const sumArgs{s.h, s.w, cellH, cellW, s.gridH, s.gridW, plan.rowsPerChunk, plan.chunks};
    err = WidthDispatch<MaxVec<T>::value>::run(vectorWidth<T>(cellW, res, nullptr, nullptr),
        CellSumLauncher<T>{res, sumArgs, sums, plan.items, stream});
    if (err != cudaSuccess)
    {
        return err;
    }

    int const cellsPerPlane = s.gridH * s.gridW;
    size_t const mlpShared = (static_cast<size_t>(s.c) + s.hidden) * sizeof(float);
    mlpKernel<<<s.n * cellsPerPlane, kMlpThreads, mlpShared, stream>>>(
        sums, w1, b1, w2, b2, attn, s.c, s.hidden, cellsPerPlane, static_cast<float>(cellH) * cellW);
    err = cudaGetLastError();
    if (err != cudaSuccess)
    {
        return err;
    }

    ScaleArgs const scaleArgs{s.h, s.w, cellH, cellW, s.gridH, s.gridW, static_cast<long long>(s.n) * s.c * s.h};
    return WidthDispatch<MaxVec<T>::value>::run(vectorWidth<T>(cellW, res, skip, out),
        ScaleAddLauncher<T>{res, skip, attn, out, scaleArgs, resident, stream});
}

} // namespace

//! Beyond the header's rules: H * W and N * C * H under 2^30 (int indexing), N * C * gridH * gridW under 2^31
//! (cell indices; more would make planCellSum divide by zero), C + hidden <= 12288 (MLP shared memory).
cudaError_t patchAttentionCheckShape(PatchAttentionShape const& s)
{
    if (s.n <= 0 || s.c <= 0 || s.h <= 0 || s.w <= 0 || s.gridH <= 0 || s.gridW <= 0 || s.hidden <= 0)
    {
        return cudaErrorInvalidValue;
    }
    if (s.h % s.gridH != 0 || s.w % s.gridW != 0)
    {
        return cudaErrorInvalidValue;
    }
    if (static_cast<long long>(s.h) * s.w >= kIndexLimit || static_cast<long long>(s.n) * s.c * s.h >= kIndexLimit)
    {
        return cudaErrorInvalidValue;
    }
    if (patchAttentionCellCount(s.n, s.c, s.gridH, s.gridW) < 0)
    {
        return cudaErrorInvalidValue;
    }
    if (static_cast<long long>(s.c) + s.hidden > kMaxMlpFloats)
    {
        return cudaErrorInvalidValue;
    }
    return cudaSuccess;
}

size_t patchAttentionWorkspaceSize(PatchAttentionShape const& shape)
{
    if (patchAttentionCheckShape(shape) != cudaSuccess)
    {
        return 0;
    }
    return patchAttentionWorkspaceBytes(shape.n, shape.c, shape.gridH, shape.gridW);
}

cudaError_t patchAttentionForward(PatchAttentionType type, void const* res, void const* skip, float const* w1,
    float const* b1, float const* w2, float const* b2, void* out, PatchAttentionShape const& shape, void* workspace,
    cudaStream_t stream)
{
    // skip, b1 and b2 are optional (nullptr: no residual, zero bias)
    if (patchAttentionCheckShape(shape) != cudaSuccess || res == nullptr || w1 == nullptr || w2 == nullptr
        || out == nullptr || workspace == nullptr || !aligned(workspace, sizeof(float)))
    {
        return cudaErrorInvalidValue;
    }
    switch (type)
    {
    case PatchAttentionType::kFLOAT:
        return forward<float>(static_cast<float const*>(res), static_cast<float const*>(skip), w1, b1, w2, b2,
            static_cast<float*>(out), shape, workspace, stream);
    case PatchAttentionType::kHALF:
        return forward<__half>(static_cast<__half const*>(res), static_cast<__half const*>(skip), w1, b1, w2, b2,
            static_cast<__half*>(out), shape, workspace, stream);
    }
    return cudaErrorInvalidValue;
}

} // namespace dsrir
