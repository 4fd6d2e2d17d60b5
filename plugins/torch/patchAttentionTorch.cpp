/*
 * PyTorch binding of the fused patch-attention kernels (plugins/patchAttention/patchAttentionKernel.h).
 *
 *   forward(res, skip | None, w1, b1, w2, b2, grid_h, grid_w, out | None) -> out
 *
 * res, skip and out: CUDA, contiguous NCHW, float32 or float16, one dtype. Weights: any floating
 * dtype and shape (hidden, C[, 1, 1]) / (C, hidden[, 1, 1]); they are passed as float32 contiguous
 * 2-D. ``out`` is allocated here unless given (the tests pass a NaN-filled one). The kernels run on
 * the current CUDA stream of res's device; a bad shape raises ValueError, a CUDA error RuntimeError
 * with cudaGetErrorString. Built on demand by dsrir/ops/patch_attention_cuda.py.
 */
#include <torch/extension.h>

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <cuda_runtime_api.h>

#include <cstdint>
#include <optional>

#include "patchAttentionKernel.h"

namespace
{

torch::Tensor asMatrix(torch::Tensor const& weight, char const* name, int64_t rows, int64_t cols, at::Device device)
{
    TORCH_CHECK_VALUE(weight.device() == device, name, " must be on ", device, ", got ", weight.device());
    TORCH_CHECK_VALUE(weight.is_floating_point(), name, " must be floating point, got ", weight.scalar_type());
    TORCH_CHECK_VALUE(weight.numel() == rows * cols, name, " must hold ", rows, " x ", cols, " values, got shape ",
        weight.sizes());
    TORCH_CHECK_VALUE(weight.dim() == 2 || weight.dim() == 4 || weight.dim() == 1, name, " has an unexpected shape ",
        weight.sizes());
    if (weight.dim() >= 2)
    {
        TORCH_CHECK_VALUE(weight.size(0) == rows, name, " must have ", rows, " rows, got shape ", weight.sizes());
    }
    return weight.to(torch::kFloat32).contiguous().view({rows, cols});
}

torch::Tensor patchAttentionForward(torch::Tensor const& res, std::optional<torch::Tensor> const& skip,
    torch::Tensor const& w1, torch::Tensor const& b1, torch::Tensor const& w2, torch::Tensor const& b2,
    int64_t gridH, int64_t gridW, std::optional<torch::Tensor> const& out)
{
    TORCH_CHECK_VALUE(res.is_cuda(), "res must be a CUDA tensor, got ", res.device());
    TORCH_CHECK_VALUE(res.dim() == 4, "res must be NCHW (4-D), got shape ", res.sizes());
    TORCH_CHECK_VALUE(res.scalar_type() == torch::kFloat32 || res.scalar_type() == torch::kFloat16,
        "res must be float32 or float16, got ", res.scalar_type());
    TORCH_CHECK_VALUE(res.is_contiguous(), "res must be contiguous NCHW");
    TORCH_CHECK_VALUE(gridH > 0 && gridW > 0 && gridH <= INT32_MAX && gridW <= INT32_MAX, "bad grid ", gridH, " x ",
        gridW);
    for (int64_t size : res.sizes())
    {
        TORCH_CHECK_VALUE(size <= INT32_MAX, "res dimension too large: ", res.sizes());
    }

    auto const device = res.device();
    int64_t const c = res.size(1);
    int64_t const hidden = w1.dim() >= 1 ? w1.size(0) : 0;
    TORCH_CHECK_VALUE(hidden > 0, "W1 must have at least one row, got shape ", w1.sizes());
    auto const w1m = asMatrix(w1, "W1", hidden, c, device);
    auto const w2m = asMatrix(w2, "W2", c, hidden, device);
    auto const b1v = asMatrix(b1, "b1", hidden, 1, device);
    auto const b2v = asMatrix(b2, "b2", c, 1, device);

    if (skip.has_value())
    {
        TORCH_CHECK_VALUE(skip->device() == device, "skip must be on ", device, ", got ", skip->device());
        TORCH_CHECK_VALUE(skip->sizes() == res.sizes(), "skip must have the shape of res ", res.sizes(), ", got ",
            skip->sizes());
        TORCH_CHECK_VALUE(skip->scalar_type() == res.scalar_type(), "skip must have the dtype of res (",
            res.scalar_type(), "), got ", skip->scalar_type());
        TORCH_CHECK_VALUE(skip->is_contiguous(), "skip must be contiguous NCHW");
    }

    dsrir::PatchAttentionShape shape{};
    shape.n = static_cast<int>(res.size(0));
    shape.c = static_cast<int>(c);
    shape.h = static_cast<int>(res.size(2));
    shape.w = static_cast<int>(res.size(3));
    shape.gridH = static_cast<int>(gridH);
    shape.gridW = static_cast<int>(gridW);
    shape.hidden = static_cast<int>(hidden);
    TORCH_CHECK_VALUE(dsrir::patchAttentionCheckShape(shape) == cudaSuccess, "patch attention: bad shape ",
        res.sizes(), " for the ", gridH, " x ", gridW, " grid (H and W must be positive multiples of the grid)");

    torch::Tensor result;
    if (out.has_value())
    {
        result = *out;
        TORCH_CHECK_VALUE(result.device() == device && result.sizes() == res.sizes()
                && result.scalar_type() == res.scalar_type() && result.is_contiguous(),
            "out must be a contiguous tensor like res");
    }
    else
    {
        result = torch::empty_like(res, at::MemoryFormat::Contiguous);
    }

    c10::cuda::CUDAGuard const guard(device);
    size_t const workspaceBytes = dsrir::patchAttentionWorkspaceSize(shape);
    // The caching allocator hands out blocks aligned to at least 512 bytes (16 are needed).
    auto workspace = torch::empty({static_cast<int64_t>(workspaceBytes > 0 ? workspaceBytes : 1)},
        res.options().dtype(torch::kUInt8));
    // The stream at::cuda::getCurrentCUDAStream() returns (c10's header, which needs no cuBLAS/cuSPARSE headers).
    cudaStream_t const stream = c10::cuda::getCurrentCUDAStream(device.index()).stream();

    auto const type
        = res.scalar_type() == torch::kFloat16 ? dsrir::PatchAttentionType::kHALF : dsrir::PatchAttentionType::kFLOAT;
    cudaError_t const status = dsrir::patchAttentionForward(type, res.data_ptr(),
        skip.has_value() ? skip->data_ptr() : nullptr, w1m.data_ptr<float>(), b1v.data_ptr<float>(),
        w2m.data_ptr<float>(), b2v.data_ptr<float>(), result.data_ptr(), shape, workspace.data_ptr(), stream);
    TORCH_CHECK(status == cudaSuccess, "dsrir::patchAttentionForward failed: ", cudaGetErrorName(status), ": ",
        cudaGetErrorString(status));
    return result;
}

size_t workspaceSize(int64_t n, int64_t c, int64_t h, int64_t w, int64_t gridH, int64_t gridW, int64_t hidden)
{
    dsrir::PatchAttentionShape const shape{static_cast<int>(n), static_cast<int>(c), static_cast<int>(h),
        static_cast<int>(w), static_cast<int>(gridH), static_cast<int>(gridW), static_cast<int>(hidden)};
    return dsrir::patchAttentionWorkspaceSize(shape);
}

} // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m)
{
    m.doc() = "DSRIR fused patch attention (CUDA)";
    m.def("forward", &patchAttentionForward, "out = res * A[cell] (+ skip), fused", py::arg("res"),
        py::arg("skip"), py::arg("w1"), py::arg("b1"), py::arg("w2"), py::arg("b2"), py::arg("grid_h"),
        py::arg("grid_w"), py::arg("out") = py::none());
    m.def("workspace_size", &workspaceSize, "bytes of workspace for (n, c, h, w, grid_h, grid_w, hidden)");
}
