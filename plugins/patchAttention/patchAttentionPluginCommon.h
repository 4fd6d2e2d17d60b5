/*
 * DSRIR_PatchAttention: the DSRIR patch attention as a TensorRT plugin. This header holds what both implementations
 * share: the plugin's identity and contract, its fields, the shape/format checks, the workspace size, the enqueue
 * body and the logging.
 *
 *   out = res * A[cell(h, w)] + skip                    (skip optional)
 *   A   = sigmoid(W2 * relu(W1 * mean_cell(res) + b1) + b2)
 *
 * computed by dsrir::patchAttentionForward (patchAttentionKernel.h) over a grid_h x grid_w grid of cells.
 *
 * Plugin identity: name "DSRIR_PatchAttention", version "1", namespace "" (the empty namespace).
 *
 * INPUT ORDER (the ONNX exporter must emit the node's inputs in exactly this order; skip is LAST so that
 * it can simply be left off):
 *   0  res   (N, C, H, W)                         float32 or float16, linear (NCHW)
 *   1  W1    (hidden, C)  or (hidden, C, 1, 1)    float32
 *   2  b1    (hidden)                             float32
 *   3  W2    (C, hidden)  or (C, hidden, 1, 1)    float32
 *   4  b2    (C)                                  float32
 *   5  skip  (N, C, H, W)  OPTIONAL               same type as res
 * so a node has 5 inputs (no skip) or 6 inputs (with skip).
 * OUTPUT: one tensor, same shape and type as res.
 * ATTRIBUTES (plugin fields): grid_h, grid_w, both kINT32 with one element, > 0; H % grid_h == 0 and
 * W % grid_w == 0 at run time. N, H and W may be dynamic; hidden is taken from W1's first dimension.
 *
 * Files, laid out as NVIDIA/TensorRT's plugin folders (e.g. plugin/roiAlignPlugin); CMakeLists.txt compiles one of the
 * two implementations, by the TensorRT major version of the headers (DSRIR_TRT_MAJOR), with the common file:
 *   patchAttentionPlugin.h/.cpp        TensorRT >= 10: IPluginV3 (IPluginV3OneCore/Build/Runtime) +
 *                                      IPluginCreatorV3One; exports `getCreators`.
 *   patchAttentionPluginLegacy.h/.cpp  TensorRT 8.5/8.6: IPluginV2DynamicExt + IPluginCreator; exports
 *                                      `getPluginCreators`.
 *   patchAttentionPluginCommon.h/.cpp  this file: shared code; exports `setLoggerFinder` from 8.6 (ILoggerFinder does
 *                                      not exist in 8.5).
 *   patchAttentionShapeMath.h          size arithmetic (cells, workspace), plain C++.
 *   patchAttentionKernel.h/.cu         the CUDA kernels, no TensorRT types.
 * The creator is also registered by REGISTER_TENSORRT_PLUGIN when the library is loaded (ctypes.CDLL,
 * dlopen, trtexec --staticPlugins / --plugins) unless the library is compiled with
 * -DDSRIR_TRT_STATIC_REGISTRATION=0 (see plugins/README.md, "Loading" and "Registering twice").
 *
 * Workspace: two float arrays of N * C * grid_h * grid_w cells (patchAttentionShapeMath.h), sized from the profile's
 * kMAX N and C, so it holds for every shape of the profile. configurePlugin rejects a profile whose kMIN or kMAX H/W
 * is not a multiple of the grid, or whose kMAX the kernel cannot run (e.g. 2^31 cells or more).
 *
 * The serialized state is grid_h, grid_w and num_inputs (5 or 6, fixed when the plugin is configured);
 * num_inputs is not an attribute: ONNX nodes and build-phase callers pass grid_h and grid_w only.
 */
#pragma once

#include <NvInferVersion.h>

#include <NvInferRuntime.h>

#include "patchAttentionKernel.h"
#include "patchAttentionShapeMath.h"

#include <array>
#include <cstddef>
#include <cstdint>

#if defined(_WIN32)
#define DSRIR_TRT_PLUGIN_API __declspec(dllexport)
#else
#define DSRIR_TRT_PLUGIN_API __attribute__((visibility("default")))
#endif

//! 1: register the creator with REGISTER_TENSORRT_PLUGIN when the library is loaded (default).
//! 0: only the exported getCreators/getPluginCreators entry points (IPluginRegistry::loadLibrary,
//!    trtexec --dynamicPlugins, plugin libraries serialized into version-compatible engines).
#ifndef DSRIR_TRT_STATIC_REGISTRATION
#define DSRIR_TRT_STATIC_REGISTRATION 1
#endif

//! 1 when the headers have nvinfer1::ILoggerFinder and IPluginRegistry::loadLibrary, which call the library's
//! setLoggerFinder: TensorRT 8.6 and later (v8.6.1 include/NvInferRuntime.h:3811, include/NvInferRuntimeCommon.h:183).
//! 8.5.3's headers have neither (its IPluginRegistry, include/NvInferRuntimeCommon.h:1233-1337, has no loadLibrary).
#if NV_TENSORRT_MAJOR > 8 || (NV_TENSORRT_MAJOR == 8 && NV_TENSORRT_MINOR >= 6)
#define DSRIR_TRT_HAS_LOGGER_FINDER 1
#else
#define DSRIR_TRT_HAS_LOGGER_FINDER 0
#endif

namespace dsrir
{

constexpr char const* kPATCH_ATTENTION_PLUGIN_NAME{"DSRIR_PatchAttention"};
constexpr char const* kPATCH_ATTENTION_PLUGIN_VERSION{"1"};
constexpr char const* kPATCH_ATTENTION_PLUGIN_NAMESPACE{""};

//! Input positions (see the table at the top of this file).
enum PatchAttentionInput : int32_t
{
    kPA_RES = 0,
    kPA_W1 = 1,
    kPA_B1 = 2,
    kPA_W2 = 3,
    kPA_B2 = 4,
    kPA_SKIP = 5,
};
constexpr int32_t kPA_NB_INPUTS_NO_SKIP{5};
constexpr int32_t kPA_NB_INPUTS_WITH_SKIP{6};

//! The plugin's attributes, exactly what clone() copies and what is serialized with grid_h/grid_w.
struct PatchAttentionParams
{
    int32_t gridH;
    int32_t gridW;
};

//! Plugin field names: the attributes (creator field names, ONNX node attributes) and, for the serialized state only,
//! num_inputs.
constexpr char const* kPA_FIELD_GRID_H{"grid_h"};
constexpr char const* kPA_FIELD_GRID_W{"grid_w"};
constexpr char const* kPA_FIELD_NUM_INPUTS{"num_inputs"}; //!< serialized state only, not an ONNX attribute

//! The serialized state is grid_h, grid_w, num_inputs, in this order, each int32: the fields of getFieldsToSerialize
//! (TensorRT >= 10) or the bytes of serialize (8.x). Changing it means a new plugin version.
constexpr int32_t kPA_NB_SERIAL_VALUES{3};

//! Room for one log message (and for the reasons the checks below write).
constexpr size_t kPA_MESSAGE_SIZE{768};

//! The dims of up to 6 inputs, in input order.
using PatchAttentionInputDims = std::array<nvinfer1::Dims, kPA_NB_INPUTS_WITH_SKIP>;

// The functions below serve the plugin's own translation units only. They are hidden, as they were when they sat in an
// unnamed namespace of a single source file: the library exports no more than before (the plugin classes and the C
// entry points), and two DSRIR plugin libraries in one process do not bind each other's helpers or logger finder.
#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

//! 5 (no skip) or 6 (with skip).
inline bool isPatchAttentionInputCount(int32_t nbInputs) noexcept
{
    return nbInputs == kPA_NB_INPUTS_NO_SKIP || nbInputs == kPA_NB_INPUTS_WITH_SKIP;
}

//! num_inputs as serialized: 0 (not configured yet), 5 or 6.
inline bool isSerializedInputCount(int32_t nbInputs) noexcept
{
    return nbInputs == 0 || isPatchAttentionInputCount(nbInputs);
}

// ------------------------------------------------------------------------------------------------ logging

//! printf-style message, prefixed with the plugin name, to the TensorRT logger of the calling engine/context (logger
//! finder, TensorRT >= 8.6), else stderr.
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void logMessage(nvinfer1::ILogger::Severity severity, char const* format, ...) noexcept;

// ------------------------------------------------------------------------------------------------ shapes

//! Every size known (none is the -1 wildcard). Sizes are int32 in TensorRT 8 and int64 from TensorRT 10.
bool allKnown(nvinfer1::Dims const& dims) noexcept;

//! res from a profile bound (DynamicPluginTensorDesc::min or ::max) when it is a full 4-D shape, else desc.dims.
nvinfer1::Dims resBound(nvinfer1::DynamicPluginTensorDesc const& res, nvinfer1::Dims const& bound) noexcept;

//! Workspace for res dims (N, C, H, W): depends on N, C and the grid only (patchAttentionShapeMath.h), so it holds
//! for any H and W, divisible or not. 0 when N or C is unknown or the cell count reaches 2^31.
size_t workspaceFor(nvinfer1::Dims const& res, PatchAttentionParams const& params) noexcept;

//! Workspace for the profile's kMAX res (DynamicPluginTensorDesc::max; desc.dims when kMAX is not a full shape):
//! enough for every shape of the profile.
size_t profileWorkspaceFor(nvinfer1::DynamicPluginTensorDesc const& res, PatchAttentionParams const& params) noexcept;

//! Ranks, and every size known on both sides of a relation: C and hidden across the weights, skip == res,
//! H % grid_h == 0, W % grid_w == 0. With `concrete`, every size must be known and pass the kernel's own
//! check (patchAttentionCheckShape). Writes the reason into `why` and returns false on the first problem.
bool checkInputDims(nvinfer1::Dims const* in, int32_t nbInputs, PatchAttentionParams const& params, bool concrete,
    char* why, size_t whyLen) noexcept;

//! Copies the dims of up to 6 descriptors (PluginTensorDesc, or a member of DynamicPluginTensorDesc).
template <typename GetDims>
bool collectDims(int32_t nbInputs, GetDims getDims, PatchAttentionInputDims& dims) noexcept
{
    if (nbInputs < 0 || nbInputs > kPA_NB_INPUTS_WITH_SKIP)
    {
        return false;
    }
    for (int32_t i = 0; i < nbInputs; ++i)
    {
        dims[static_cast<size_t>(i)] = getDims(i);
    }
    return true;
}

//! The inputs' dims for configurePlugin (desc.dims of each DynamicPluginTensorDesc) and onShapeChange (dims of each
//! PluginTensorDesc). False, logged as "<caller>: expects 5 or 6 inputs and 1 output, got ...", when an array is
//! null, there is not exactly one output or more than 6 inputs; checkInputDims judges the rest.
bool readInputDims(char const* caller, nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
    nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs, PatchAttentionInputDims& dims) noexcept;
bool readInputDims(char const* caller, nvinfer1::PluginTensorDesc const* in, int32_t nbInputs,
    nvinfer1::PluginTensorDesc const* out, int32_t nbOutputs, PatchAttentionInputDims& dims) noexcept;

//! The optimisation profile's kMIN and kMAX shapes (DynamicPluginTensorDesc::min and ::max, build phase): H and W of
//! res/skip multiples of the grid at both bounds, and the kMAX shape one the kernel runs (int32 limits, fewer than 2^31
//! cells; all of them grow with the shape, so kMAX bounds every shape of the profile). trtexec does not validate
//! profiles as export/ does, and the workspace is sized from kMAX. Weights are constants: their desc.dims are used.
//! A res/skip bound that is not a full 4-D shape is replaced by desc.dims, which must then be fully known.
bool checkProfileBounds(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
    PatchAttentionParams const& params, char* why, size_t whyLen) noexcept;

// ------------------------------------------------------------------------------------------------ formats

//! supportsFormatCombination: res FP32 or FP16; W1, b1, W2, b2 FP32; skip and the output the type of res; all linear.
//! Looks only at descriptors at positions <= pos, as TensorRT requires. False for a null inOut.
bool formatSupported(
    int32_t pos, nvinfer1::PluginTensorDesc const* inOut, int32_t nbInputs, int32_t nbOutputs) noexcept;
bool formatSupported(
    int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut, int32_t nbInputs, int32_t nbOutputs) noexcept;

// ------------------------------------------------------------------------------------------------ execution

//! The body of enqueue: checks the input count, the buffers, the type and the shape, then runs
//! patchAttentionForward. 0 on success, 1 (logged) otherwise.
int32_t runForward(nvinfer1::PluginTensorDesc const* inputDesc, void const* const* inputs, void* const* outputs,
    void* workspace, cudaStream_t stream, PatchAttentionParams const& params, int32_t nbInputs) noexcept;

// ------------------------------------------------------------------------------------------------ fields

//! The creator's field names: grid_h and grid_w, kINT32, one element each.
std::array<nvinfer1::PluginField, 2> creatorFieldNames() noexcept;

//! createPlugin's fields: grid_h and grid_w required and > 0; num_inputs (serialized state) optional: 0 (unknown), 5
//! or 6; unknown fields are logged as warnings and ignored. False, logged as "createPlugin(<name>): <why>", otherwise.
bool parsePluginFields(nvinfer1::AsciiChar const* name, nvinfer1::PluginFieldCollection const* fc,
    PatchAttentionParams& params, int32_t& nbInputs) noexcept;

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

} // namespace dsrir

#if DSRIR_TRT_HAS_LOGGER_FINDER
// Entry point looked up by IPluginRegistry::loadLibrary, defined in patchAttentionPluginCommon.cpp; the creators'
// entry point is getCreators (patchAttentionPlugin.h) or getPluginCreators (patchAttentionPluginLegacy.h).
extern "C"
{
    //! Stores the logger finder TensorRT hands to the library; plugin errors go to its logger (else stderr).
    DSRIR_TRT_PLUGIN_API void setLoggerFinder(nvinfer1::ILoggerFinder* finder);
}
#endif
