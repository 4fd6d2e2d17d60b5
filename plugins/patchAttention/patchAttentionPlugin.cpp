/*
 * DSRIR_PatchAttention TensorRT plugin: plugin class, creator, registration (see patchAttentionPlugin.h for the
 * input order, the attributes and how the TensorRT version picks the interface). The CUDA work is done by
 * dsrir::patchAttentionForward in patchAttentionKernel.cu; this file holds no kernel code.
 */
#include "patchAttentionPlugin.h"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <initializer_list>

using nvinfer1::AsciiChar;
using nvinfer1::DataType;
using nvinfer1::Dims;
using nvinfer1::DimsExprs;
using nvinfer1::DynamicPluginTensorDesc;
using nvinfer1::ILogger;
#if DSRIR_TRT_HAS_LOGGER_FINDER
using nvinfer1::ILoggerFinder;
#endif
using nvinfer1::PluginField;
using nvinfer1::PluginFieldCollection;
using nvinfer1::PluginFieldType;
using nvinfer1::PluginTensorDesc;
using nvinfer1::TensorFormat;

namespace dsrir
{
namespace
{

constexpr char const* kFIELD_GRID_H{"grid_h"};
constexpr char const* kFIELD_GRID_W{"grid_w"};
constexpr char const* kFIELD_NUM_INPUTS{"num_inputs"}; //!< serialized state only, not an ONNX attribute
constexpr size_t kMESSAGE_SIZE{768};

// ------------------------------------------------------------------------------------------------ logging

#if DSRIR_TRT_HAS_LOGGER_FINDER
//! Set by setLoggerFinder() when TensorRT loads the library with IPluginRegistry::loadLibrary (TensorRT >= 8.6).
std::atomic<ILoggerFinder*> gLoggerFinder{nullptr};
#endif

char const* severityName(ILogger::Severity severity) noexcept
{
    switch (severity)
    {
    case ILogger::Severity::kINTERNAL_ERROR: return "INTERNAL_ERROR";
    case ILogger::Severity::kERROR: return "ERROR";
    case ILogger::Severity::kWARNING: return "WARNING";
    case ILogger::Severity::kINFO: return "INFO";
    case ILogger::Severity::kVERBOSE: return "VERBOSE";
    }
    return "UNKNOWN";
}

//! printf-style message to the TensorRT logger of the calling engine/context (logger finder, TensorRT >= 8.6), else
//! stderr.
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void logMessage(ILogger::Severity severity, char const* format, ...) noexcept
{
    char text[kMESSAGE_SIZE];
    va_list args;
    va_start(args, format);
    std::vsnprintf(text, sizeof(text), format, args);
    va_end(args);

    char message[kMESSAGE_SIZE + 64];
    std::snprintf(message, sizeof(message), "%s plugin: %s", kPATCH_ATTENTION_PLUGIN_NAME, text);

    ILogger* logger{nullptr};
#if DSRIR_TRT_HAS_LOGGER_FINDER
    ILoggerFinder* const finder = gLoggerFinder.load(std::memory_order_acquire);
    if (finder != nullptr)
    {
        try
        {
            logger = finder->findLogger();
        }
        catch (...)
        {
            logger = nullptr;
        }
    }
#endif
    if (logger != nullptr)
    {
        logger->log(severity, message);
        return;
    }
    std::fprintf(stderr, "[%s] %s\n", severityName(severity), message);
}

// ------------------------------------------------------------------------------------------------ shapes

//! Dimension sizes are int32 in TensorRT 8 and int64 from TensorRT 10; -1 is a wildcard (unknown yet).
bool isKnown(int64_t size) noexcept
{
    return size >= 0;
}

bool sameOrUnknown(int64_t a, int64_t b) noexcept
{
    return !isKnown(a) || !isKnown(b) || a == b;
}

long long dim(Dims const& dims, int32_t i) noexcept
{
    return static_cast<long long>(dims.d[i]);
}

//! (rows, cols) or (rows, cols, 1, 1), as a 1x1 convolution's weight.
bool isMatrix(Dims const& dims) noexcept
{
    return dims.nbDims == 2
        || (dims.nbDims == 4 && sameOrUnknown(dims.d[2], 1) && sameOrUnknown(dims.d[3], 1));
}

//! The kernel's shape from res (N, C, H, W) and W1 (hidden, ...); false if a size is unknown or over INT_MAX.
bool makeShape(Dims const& res, Dims const& w1, PatchAttentionParams const& params, PatchAttentionShape& shape) noexcept
{
    if (res.nbDims != 4 || w1.nbDims < 1)
    {
        return false;
    }
    int64_t const sizes[5] = {res.d[0], res.d[1], res.d[2], res.d[3], w1.d[0]};
    for (int64_t const size : sizes)
    {
        if (!isKnown(size) || size > INT_MAX)
        {
            return false;
        }
    }
    shape.n = static_cast<int>(sizes[0]);
    shape.c = static_cast<int>(sizes[1]);
    shape.h = static_cast<int>(sizes[2]);
    shape.w = static_cast<int>(sizes[3]);
    shape.gridH = params.gridH;
    shape.gridW = params.gridW;
    shape.hidden = static_cast<int>(sizes[4]);
    return true;
}

//! Workspace for res dims (N, C, H, W): depends on N, C and the grid only (patchAttentionShapeMath.h), so it holds
//! for any H and W, divisible or not. 0 when N or C is unknown or the cell count reaches 2^31.
size_t workspaceFor(Dims const& res, PatchAttentionParams const& params) noexcept
{
    if (res.nbDims != 4)
    {
        return 0;
    }
    return patchAttentionWorkspaceBytes(res.d[0], res.d[1], params.gridH, params.gridW);
}

bool allKnown(Dims const& dims) noexcept
{
    for (int32_t i = 0; i < dims.nbDims; ++i)
    {
        if (!isKnown(dims.d[i]))
        {
            return false;
        }
    }
    return true;
}

//! res from a profile bound (DynamicPluginTensorDesc::min or ::max) when it is a full 4-D shape, else desc.dims.
Dims resBound(DynamicPluginTensorDesc const& res, Dims const& bound) noexcept
{
    return bound.nbDims == 4 && allKnown(bound) ? bound : res.desc.dims;
}

//! Ranks, and every size known on both sides of a relation: C and hidden across the weights, skip == res,
//! H % grid_h == 0, W % grid_w == 0. With `concrete`, every size must be known and pass the kernel's own
//! check (patchAttentionCheckShape). Writes the reason into `why` and returns false on the first problem.
bool checkInputDims(Dims const* in, int32_t nbInputs, PatchAttentionParams const& params, bool concrete, char* why,
    size_t whyLen) noexcept
{
    if (nbInputs != kPA_NB_INPUTS_NO_SKIP && nbInputs != kPA_NB_INPUTS_WITH_SKIP)
    {
        std::snprintf(why, whyLen, "expects 5 inputs (res, W1, b1, W2, b2) or 6 (res, W1, b1, W2, b2, skip), got %d",
            nbInputs);
        return false;
    }
    Dims const& res = in[kPA_RES];
    Dims const& w1 = in[kPA_W1];
    Dims const& b1 = in[kPA_B1];
    Dims const& w2 = in[kPA_W2];
    Dims const& b2 = in[kPA_B2];
    if (res.nbDims != 4)
    {
        std::snprintf(why, whyLen, "input 0 (res) must be 4-D (N, C, H, W), got %d-D", res.nbDims);
        return false;
    }
    if (!isMatrix(w1) || !isMatrix(w2))
    {
        std::snprintf(why, whyLen, "inputs 1 (W1) and 3 (W2) must be 2-D or (rows, cols, 1, 1), got %d-D and %d-D",
            w1.nbDims, w2.nbDims);
        return false;
    }
    if (b1.nbDims != 1 || b2.nbDims != 1)
    {
        std::snprintf(why, whyLen, "inputs 2 (b1) and 4 (b2) must be 1-D, got %d-D and %d-D", b1.nbDims, b2.nbDims);
        return false;
    }
    int64_t const c = res.d[1];
    int64_t const hidden = w1.d[0];
    if (!sameOrUnknown(w1.d[1], c) || !sameOrUnknown(b1.d[0], hidden) || !sameOrUnknown(w2.d[0], c)
        || !sameOrUnknown(w2.d[1], hidden) || !sameOrUnknown(b2.d[0], c))
    {
        std::snprintf(why, whyLen,
            "weight shapes do not match C=%lld, hidden=%lld: W1 (%lld, %lld), b1 (%lld), W2 (%lld, %lld), b2 (%lld) "
            "(expected W1 (hidden, C), b1 (hidden), W2 (C, hidden), b2 (C))",
            dim(res, 1), dim(w1, 0), dim(w1, 0), dim(w1, 1), dim(b1, 0), dim(w2, 0), dim(w2, 1), dim(b2, 0));
        return false;
    }
    if (nbInputs == kPA_NB_INPUTS_WITH_SKIP)
    {
        Dims const& skip = in[kPA_SKIP];
        bool same = skip.nbDims == 4;
        for (int32_t i = 0; same && i < 4; ++i)
        {
            same = sameOrUnknown(skip.d[i], res.d[i]);
        }
        if (!same)
        {
            std::snprintf(why, whyLen, "input 5 (skip) must have the shape of res (%lld, %lld, %lld, %lld)",
                dim(res, 0), dim(res, 1), dim(res, 2), dim(res, 3));
            return false;
        }
    }
    if ((isKnown(res.d[2]) && !patchAttentionDivisible(res.d[2], params.gridH))
        || (isKnown(res.d[3]) && !patchAttentionDivisible(res.d[3], params.gridW)))
    {
        std::snprintf(why, whyLen, "H=%lld and W=%lld must be multiples of grid_h=%d and grid_w=%d", dim(res, 2),
            dim(res, 3), params.gridH, params.gridW);
        return false;
    }
    if (isKnown(res.d[0]) && isKnown(res.d[1])
        && patchAttentionCellCount(res.d[0], res.d[1], params.gridH, params.gridW) < 0)
    {
        std::snprintf(why, whyLen, "N=%lld x C=%lld x grid_h=%d x grid_w=%d cells must be fewer than 2^31", dim(res, 0),
            dim(res, 1), params.gridH, params.gridW);
        return false;
    }
    if (concrete)
    {
        PatchAttentionShape shape{};
        if (!makeShape(res, w1, params, shape))
        {
            std::snprintf(why, whyLen,
                "sizes must be known and fit in int32: res (%lld, %lld, %lld, %lld), hidden %lld", dim(res, 0),
                dim(res, 1), dim(res, 2), dim(res, 3), dim(w1, 0));
            return false;
        }
        cudaError_t status{cudaErrorInvalidValue};
        try
        {
            status = patchAttentionCheckShape(shape);
        }
        catch (...)
        {
            status = cudaErrorInvalidValue;
        }
        if (status != cudaSuccess)
        {
            std::snprintf(why, whyLen, "kernel rejects N=%d C=%d H=%d W=%d grid %dx%d hidden=%d", shape.n, shape.c,
                shape.h, shape.w, shape.gridH, shape.gridW, shape.hidden);
            return false;
        }
    }
    return true;
}

//! Copies the dims of up to 6 descriptors (PluginTensorDesc, or a member of DynamicPluginTensorDesc).
template <typename GetDims>
bool collectDims(int32_t nbInputs, GetDims getDims, std::array<Dims, kPA_NB_INPUTS_WITH_SKIP>& dims) noexcept
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

//! The optimisation profile's kMIN and kMAX shapes (DynamicPluginTensorDesc::min and ::max, build phase): H and W of
//! res/skip multiples of the grid at both bounds, and the kMAX shape one the kernel runs (int32 limits, fewer than 2^31
//! cells; all of them grow with the shape, so kMAX bounds every shape of the profile). trtexec does not validate
//! profiles as export/ does, and the workspace is sized from kMAX. Weights are constants: their desc.dims are used.
//! A res/skip bound that is not a full 4-D shape is replaced by desc.dims, which must then be fully known.
bool checkProfileBounds(DynamicPluginTensorDesc const* in, int32_t nbInputs, PatchAttentionParams const& params,
    char* why, size_t whyLen) noexcept
{
    constexpr size_t kDETAIL_SIZE{kMESSAGE_SIZE / 2};
    char detail[kDETAIL_SIZE];
    std::array<Dims, kPA_NB_INPUTS_WITH_SKIP> dims{};
    for (bool const isMax : {false, true})
    {
        char const* const name = isMax ? "kMAX" : "kMIN";
        if (!collectDims(nbInputs, [in](int32_t i) { return in[i].desc.dims; }, dims))
        {
            std::snprintf(why, whyLen, "expects 5 or 6 inputs, got %d", nbInputs);
            return false;
        }
        for (int32_t i : {static_cast<int32_t>(kPA_RES), static_cast<int32_t>(kPA_SKIP)})
        {
            if (i >= nbInputs)
            {
                continue;
            }
            dims[static_cast<size_t>(i)] = resBound(in[i], isMax ? in[i].max : in[i].min);
            if (!allKnown(dims[static_cast<size_t>(i)]))
            {
                std::snprintf(why, whyLen, "optimisation profile %s shape of input %d is missing", name, i);
                return false;
            }
        }
        if (!checkInputDims(dims.data(), nbInputs, params, isMax, detail, sizeof(detail)))
        {
            std::snprintf(why, whyLen, "optimisation profile %s shape: %.*s", name, static_cast<int>(kDETAIL_SIZE),
                detail);
            return false;
        }
    }
    return true;
}

// ------------------------------------------------------------------------------------------------ formats

//! res: FP32 or FP16; W1, b1, W2, b2: FP32; skip and the output: the type of res; all linear. Looks only at
//! descriptors at positions <= pos, as TensorRT requires.
template <typename GetDesc>
bool formatSupported(int32_t pos, int32_t nbInputs, int32_t nbOutputs, GetDesc getDesc) noexcept
{
    if ((nbInputs != kPA_NB_INPUTS_NO_SKIP && nbInputs != kPA_NB_INPUTS_WITH_SKIP) || nbOutputs != 1 || pos < 0
        || pos >= nbInputs + nbOutputs)
    {
        return false;
    }
    PluginTensorDesc const& desc = getDesc(pos);
    if (desc.format != TensorFormat::kLINEAR)
    {
        return false;
    }
    if (pos == kPA_RES)
    {
        return desc.type == DataType::kFLOAT || desc.type == DataType::kHALF;
    }
    if (pos <= kPA_B2)
    {
        return desc.type == DataType::kFLOAT;
    }
    return desc.type == getDesc(kPA_RES).type; // skip, output
}

// ------------------------------------------------------------------------------------------------ execution

int32_t runForward(PluginTensorDesc const* inputDesc, void const* const* inputs, void* const* outputs,
    void* workspace, cudaStream_t stream, PatchAttentionParams const& params, int32_t nbInputs) noexcept
{
    if (nbInputs != kPA_NB_INPUTS_NO_SKIP && nbInputs != kPA_NB_INPUTS_WITH_SKIP)
    {
        logMessage(ILogger::Severity::kERROR,
            "enqueue: the number of inputs is unknown (the plugin was neither configured nor deserialized with it)");
        return 1;
    }
    if (inputDesc == nullptr || inputs == nullptr || outputs == nullptr)
    {
        logMessage(ILogger::Severity::kERROR, "enqueue: null descriptor or buffer array");
        return 1;
    }
    PatchAttentionType type{PatchAttentionType::kFLOAT};
    switch (inputDesc[kPA_RES].type)
    {
    case DataType::kFLOAT: type = PatchAttentionType::kFLOAT; break;
    case DataType::kHALF: type = PatchAttentionType::kHALF; break;
    default:
        logMessage(ILogger::Severity::kERROR, "enqueue: res must be FP32 or FP16 (DataType %d)",
            static_cast<int>(inputDesc[kPA_RES].type));
        return 1;
    }
    PatchAttentionShape shape{};
    if (!makeShape(inputDesc[kPA_RES].dims, inputDesc[kPA_W1].dims, params, shape))
    {
        logMessage(ILogger::Severity::kERROR, "enqueue: res must be a 4-D tensor of known sizes");
        return 1;
    }
    try
    {
        if (patchAttentionWorkspaceSize(shape) > 0 && workspace == nullptr)
        {
            logMessage(ILogger::Severity::kERROR, "enqueue: no workspace given (getWorkspaceSize was not honoured)");
            return 1;
        }
        void const* const skip = nbInputs == kPA_NB_INPUTS_WITH_SKIP ? inputs[kPA_SKIP] : nullptr;
        cudaError_t const status = patchAttentionForward(type, inputs[kPA_RES], skip,
            static_cast<float const*>(inputs[kPA_W1]), static_cast<float const*>(inputs[kPA_B1]),
            static_cast<float const*>(inputs[kPA_W2]), static_cast<float const*>(inputs[kPA_B2]), outputs[0], shape,
            workspace, stream);
        if (status != cudaSuccess)
        {
            logMessage(ILogger::Severity::kERROR,
                "enqueue failed with %s (%s) for N=%d C=%d H=%d W=%d grid %dx%d hidden=%d %s %s skip",
                cudaGetErrorName(status), cudaGetErrorString(status), shape.n, shape.c, shape.h, shape.w, shape.gridH,
                shape.gridW, shape.hidden, type == PatchAttentionType::kHALF ? "FP16" : "FP32",
                skip != nullptr ? "with" : "without");
            return 1;
        }
    }
    catch (...)
    {
        logMessage(ILogger::Severity::kERROR, "enqueue: unexpected C++ exception");
        return 1;
    }
    return 0;
}

// ------------------------------------------------------------------------------------------------ fields

bool readInt32Field(PluginField const& field, int32_t& value, char* why, size_t whyLen) noexcept
{
    if (field.type != PluginFieldType::kINT32 || field.length != 1 || field.data == nullptr)
    {
        std::snprintf(why, whyLen, "field %s must be one INT32 (got PluginFieldType %d, length %d)", field.name,
            static_cast<int>(field.type), static_cast<int>(field.length));
        return false;
    }
    std::memcpy(&value, field.data, sizeof(value));
    return true;
}

//! grid_h and grid_w are required and > 0; num_inputs (serialized state) is optional: 0 (unknown), 5 or 6.
bool parseFields(PluginFieldCollection const* fc, PatchAttentionParams& params, int32_t& nbInputs, char* why,
    size_t whyLen) noexcept
{
    if (fc == nullptr || (fc->nbFields > 0 && fc->fields == nullptr))
    {
        std::snprintf(why, whyLen, "no plugin fields given (needs %s and %s)", kFIELD_GRID_H, kFIELD_GRID_W);
        return false;
    }
    bool haveH{false};
    bool haveW{false};
    params = PatchAttentionParams{0, 0};
    nbInputs = 0;
    for (int32_t i = 0; i < fc->nbFields; ++i)
    {
        PluginField const& field = fc->fields[i];
        if (field.name == nullptr)
        {
            continue;
        }
        if (std::strcmp(field.name, kFIELD_GRID_H) == 0)
        {
            haveH = readInt32Field(field, params.gridH, why, whyLen);
            if (!haveH)
            {
                return false;
            }
        }
        else if (std::strcmp(field.name, kFIELD_GRID_W) == 0)
        {
            haveW = readInt32Field(field, params.gridW, why, whyLen);
            if (!haveW)
            {
                return false;
            }
        }
        else if (std::strcmp(field.name, kFIELD_NUM_INPUTS) == 0)
        {
            if (!readInt32Field(field, nbInputs, why, whyLen))
            {
                return false;
            }
        }
        else
        {
            logMessage(ILogger::Severity::kWARNING, "ignoring unknown plugin field '%s'", field.name);
        }
    }
    if (!haveH || !haveW)
    {
        std::snprintf(why, whyLen, "missing field %s (INT32, > 0)", haveH ? kFIELD_GRID_W : kFIELD_GRID_H);
        return false;
    }
    if (params.gridH <= 0 || params.gridW <= 0)
    {
        std::snprintf(why, whyLen, "%s=%d and %s=%d must be > 0", kFIELD_GRID_H, params.gridH, kFIELD_GRID_W,
            params.gridW);
        return false;
    }
    if (nbInputs != 0 && nbInputs != kPA_NB_INPUTS_NO_SKIP && nbInputs != kPA_NB_INPUTS_WITH_SKIP)
    {
        std::snprintf(why, whyLen, "%s=%d must be 5 or 6", kFIELD_NUM_INPUTS, nbInputs);
        return false;
    }
    return true;
}

} // namespace

#if NV_TENSORRT_MAJOR >= 10
// ================================================================================================ TensorRT >= 10

using nvinfer1::IPluginCapability;
using nvinfer1::IPluginV3;
using nvinfer1::PluginCapabilityType;
using nvinfer1::TensorRTPhase;

PatchAttentionPlugin::PatchAttentionPlugin(PatchAttentionParams const& params, int32_t nbInputs) noexcept
    : mParams(params)
    , mNbInputs(nbInputs)
    , mSerialFields{{PluginField{kFIELD_GRID_H, &mParams.gridH, PluginFieldType::kINT32, 1},
          PluginField{kFIELD_GRID_W, &mParams.gridW, PluginFieldType::kINT32, 1},
          PluginField{kFIELD_NUM_INPUTS, &mNbInputs, PluginFieldType::kINT32, 1}}}
    , mSerialFieldCollection{static_cast<int32_t>(mSerialFields.size()), mSerialFields.data()}
    , mMetadata{}
{
    std::snprintf(mMetadata.data(), mMetadata.size(), "%s=%d %s=%d", kFIELD_GRID_H, mParams.gridH, kFIELD_GRID_W,
        mParams.gridW);
}

IPluginCapability* PatchAttentionPlugin::getCapabilityInterface(PluginCapabilityType type) noexcept
{
    switch (type)
    {
    case PluginCapabilityType::kCORE: return static_cast<nvinfer1::IPluginV3OneCore*>(this);
    case PluginCapabilityType::kBUILD: return static_cast<nvinfer1::IPluginV3OneBuild*>(this);
    case PluginCapabilityType::kRUNTIME: return static_cast<nvinfer1::IPluginV3OneRuntime*>(this);
    }
    return nullptr;
}

IPluginV3* PatchAttentionPlugin::clone() noexcept
{
    try
    {
        return new PatchAttentionPlugin(mParams, mNbInputs);
    }
    catch (...)
    {
        logMessage(ILogger::Severity::kERROR, "clone: out of memory");
    }
    return nullptr;
}

AsciiChar const* PatchAttentionPlugin::getPluginName() const noexcept
{
    return kPATCH_ATTENTION_PLUGIN_NAME;
}

AsciiChar const* PatchAttentionPlugin::getPluginVersion() const noexcept
{
    return kPATCH_ATTENTION_PLUGIN_VERSION;
}

AsciiChar const* PatchAttentionPlugin::getPluginNamespace() const noexcept
{
    return kPATCH_ATTENTION_PLUGIN_NAMESPACE;
}

int32_t PatchAttentionPlugin::configurePlugin(
    DynamicPluginTensorDesc const* in, int32_t nbInputs, DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept
{
    char why[kMESSAGE_SIZE];
    std::array<Dims, kPA_NB_INPUTS_WITH_SKIP> dims{};
    if (in == nullptr || out == nullptr || nbOutputs != 1
        || !collectDims(nbInputs, [in](int32_t i) { return in[i].desc.dims; }, dims))
    {
        logMessage(ILogger::Severity::kERROR, "configurePlugin: expects 5 or 6 inputs and 1 output, got %d and %d",
            nbInputs, nbOutputs);
        return -1;
    }
    if (!checkInputDims(dims.data(), nbInputs, mParams, false, why, sizeof(why)))
    {
        logMessage(ILogger::Severity::kERROR, "configurePlugin: %s", why);
        return -1;
    }
    // min/opt/max are the profile's kMIN/kOPT/kMAX (v10.3.0 include/NvInferRuntime.h:806-812, IPluginV3OneBuild).
    if (!checkProfileBounds(in, nbInputs, mParams, why, sizeof(why)))
    {
        logMessage(ILogger::Severity::kERROR, "configurePlugin: %s", why);
        return -1;
    }
    // The builder runs the plugin at the profile's kOPT shape: reject one the kernel cannot run.
    if (in[kPA_RES].opt.nbDims == 4)
    {
        auto const optDims = [in](int32_t i) {
            return in[i].opt.nbDims == in[i].desc.dims.nbDims ? in[i].opt : in[i].desc.dims;
        };
        collectDims(nbInputs, optDims, dims);
        if (!checkInputDims(dims.data(), nbInputs, mParams, false, why, sizeof(why)))
        {
            logMessage(ILogger::Severity::kERROR, "configurePlugin: optimisation profile kOPT shape: %s", why);
            return -1;
        }
    }
    mNbInputs = nbInputs;
    return 0;
}

int32_t PatchAttentionPlugin::getOutputDataTypes(
    DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes, int32_t nbInputs) const noexcept
{
    if (outputTypes == nullptr || inputTypes == nullptr || nbOutputs != 1
        || (nbInputs != kPA_NB_INPUTS_NO_SKIP && nbInputs != kPA_NB_INPUTS_WITH_SKIP))
    {
        logMessage(ILogger::Severity::kERROR, "getOutputDataTypes: expects 5 or 6 inputs and 1 output, got %d and %d",
            nbInputs, nbOutputs);
        return -1;
    }
    if (inputTypes[kPA_RES] != DataType::kFLOAT && inputTypes[kPA_RES] != DataType::kHALF)
    {
        logMessage(ILogger::Severity::kERROR, "getOutputDataTypes: res must be FP32 or FP16 (DataType %d)",
            static_cast<int>(inputTypes[kPA_RES]));
        return -1;
    }
    outputTypes[0] = inputTypes[kPA_RES];
    return 0;
}

int32_t PatchAttentionPlugin::getOutputShapes(DimsExprs const* inputs, int32_t nbInputs,
    DimsExprs const* /*shapeInputs*/, int32_t /*nbShapeInputs*/, DimsExprs* outputs, int32_t nbOutputs,
    nvinfer1::IExprBuilder& /*exprBuilder*/) noexcept
{
    if (inputs == nullptr || outputs == nullptr || nbOutputs != 1
        || (nbInputs != kPA_NB_INPUTS_NO_SKIP && nbInputs != kPA_NB_INPUTS_WITH_SKIP))
    {
        logMessage(ILogger::Severity::kERROR, "getOutputShapes: expects 5 or 6 inputs and 1 output, got %d and %d",
            nbInputs, nbOutputs);
        return -1;
    }
    if (inputs[kPA_RES].nbDims != 4)
    {
        logMessage(ILogger::Severity::kERROR, "getOutputShapes: res must be 4-D (N, C, H, W), got %d-D",
            inputs[kPA_RES].nbDims);
        return -1;
    }
    outputs[0] = inputs[kPA_RES]; // same N, C, H, W expressions as res
    return 0;
}

bool PatchAttentionPlugin::supportsFormatCombination(
    int32_t pos, DynamicPluginTensorDesc const* inOut, int32_t nbInputs, int32_t nbOutputs) noexcept
{
    return inOut != nullptr
        && formatSupported(pos, nbInputs, nbOutputs,
            [inOut](int32_t i) -> PluginTensorDesc const& { return inOut[i].desc; });
}

int32_t PatchAttentionPlugin::getNbOutputs() const noexcept
{
    return 1;
}

size_t PatchAttentionPlugin::getWorkspaceSize(DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
    DynamicPluginTensorDesc const* /*outputs*/, int32_t /*nbOutputs*/) const noexcept
{
    if (inputs == nullptr || nbInputs < kPA_NB_INPUTS_NO_SKIP)
    {
        return 0;
    }
    // kMAX N and C: enough for every shape of the profile ("or any smaller problem", v10.3.0 NvInferRuntime.h:910-912)
    return workspaceFor(resBound(inputs[kPA_RES], inputs[kPA_RES].max), mParams);
}

char const* PatchAttentionPlugin::getMetadataString() noexcept
{
    return mMetadata.data();
}

int32_t PatchAttentionPlugin::onShapeChange(
    PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* out, int32_t nbOutputs) noexcept
{
    char why[kMESSAGE_SIZE];
    std::array<Dims, kPA_NB_INPUTS_WITH_SKIP> dims{};
    if (in == nullptr || out == nullptr || nbOutputs != 1
        || !collectDims(nbInputs, [in](int32_t i) { return in[i].dims; }, dims))
    {
        logMessage(ILogger::Severity::kERROR, "onShapeChange: expects 5 or 6 inputs and 1 output, got %d and %d",
            nbInputs, nbOutputs);
        return -1;
    }
    if (!checkInputDims(dims.data(), nbInputs, mParams, true, why, sizeof(why)))
    {
        logMessage(ILogger::Severity::kERROR, "onShapeChange: %s", why);
        return -1;
    }
    mNbInputs = nbInputs;
    return 0;
}

int32_t PatchAttentionPlugin::enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* /*outputDesc*/,
    void const* const* inputs, void* const* outputs, void* workspace, cudaStream_t stream) noexcept
{
    return runForward(inputDesc, inputs, outputs, workspace, stream, mParams, mNbInputs);
}

IPluginV3* PatchAttentionPlugin::attachToContext(nvinfer1::IPluginResourceContext* /*context*/) noexcept
{
    return clone();
}

PluginFieldCollection const* PatchAttentionPlugin::getFieldsToSerialize() noexcept
{
    return &mSerialFieldCollection; // points at mParams and mNbInputs
}

PatchAttentionPluginCreator::PatchAttentionPluginCreator() noexcept
    : mFieldNames{{PluginField{kFIELD_GRID_H, nullptr, PluginFieldType::kINT32, 1},
          PluginField{kFIELD_GRID_W, nullptr, PluginFieldType::kINT32, 1}}}
    , mFieldCollection{static_cast<int32_t>(mFieldNames.size()), mFieldNames.data()}
{
}

AsciiChar const* PatchAttentionPluginCreator::getPluginName() const noexcept
{
    return kPATCH_ATTENTION_PLUGIN_NAME;
}

AsciiChar const* PatchAttentionPluginCreator::getPluginVersion() const noexcept
{
    return kPATCH_ATTENTION_PLUGIN_VERSION;
}

AsciiChar const* PatchAttentionPluginCreator::getPluginNamespace() const noexcept
{
    return kPATCH_ATTENTION_PLUGIN_NAMESPACE;
}

PluginFieldCollection const* PatchAttentionPluginCreator::getFieldNames() noexcept
{
    return &mFieldCollection;
}

IPluginV3* PatchAttentionPluginCreator::createPlugin(
    AsciiChar const* name, PluginFieldCollection const* fc, TensorRTPhase /*phase*/) noexcept
{
    char why[kMESSAGE_SIZE];
    PatchAttentionParams params{0, 0};
    int32_t nbInputs{0};
    if (!parseFields(fc, params, nbInputs, why, sizeof(why)))
    {
        logMessage(ILogger::Severity::kERROR, "createPlugin(%s): %s", name != nullptr ? name : "", why);
        return nullptr;
    }
    try
    {
        return new PatchAttentionPlugin(params, nbInputs);
    }
    catch (...)
    {
        logMessage(ILogger::Severity::kERROR, "createPlugin: out of memory");
    }
    return nullptr;
}

#else
// ================================================================================================ TensorRT 8.5 / 8.6

PatchAttentionPlugin::PatchAttentionPlugin(PatchAttentionParams const& params, int32_t nbInputs) noexcept
    : mParams(params)
    , mNbInputs(nbInputs)
{
}

AsciiChar const* PatchAttentionPlugin::getPluginType() const noexcept
{
    return kPATCH_ATTENTION_PLUGIN_NAME;
}

AsciiChar const* PatchAttentionPlugin::getPluginVersion() const noexcept
{
    return kPATCH_ATTENTION_PLUGIN_VERSION;
}

int32_t PatchAttentionPlugin::getNbOutputs() const noexcept
{
    return 1;
}

int32_t PatchAttentionPlugin::initialize() noexcept
{
    return 0;
}

void PatchAttentionPlugin::terminate() noexcept {}

size_t PatchAttentionPlugin::getSerializationSize() const noexcept
{
    return kSERIALIZED_SIZE;
}

void PatchAttentionPlugin::serialize(void* buffer) const noexcept
{
    if (buffer == nullptr)
    {
        logMessage(ILogger::Severity::kERROR, "serialize: null buffer");
        return;
    }
    int32_t const values[3] = {mParams.gridH, mParams.gridW, mNbInputs};
    static_assert(sizeof(values) == kSERIALIZED_SIZE, "serialized layout");
    std::memcpy(buffer, values, sizeof(values));
}

void PatchAttentionPlugin::destroy() noexcept
{
    delete this;
}

void PatchAttentionPlugin::setPluginNamespace(AsciiChar const* pluginNamespace) noexcept
{
    try
    {
        mNamespace = pluginNamespace != nullptr ? pluginNamespace : "";
    }
    catch (...)
    {
        logMessage(ILogger::Severity::kERROR, "setPluginNamespace: out of memory");
    }
}

AsciiChar const* PatchAttentionPlugin::getPluginNamespace() const noexcept
{
    return mNamespace.c_str();
}

DataType PatchAttentionPlugin::getOutputDataType(
    int32_t index, DataType const* inputTypes, int32_t nbInputs) const noexcept
{
    if (index != 0 || inputTypes == nullptr || nbInputs < 1)
    {
        logMessage(ILogger::Severity::kERROR, "getOutputDataType: bad query (output %d, %d inputs)", index, nbInputs);
        return DataType::kFLOAT;
    }
    return inputTypes[kPA_RES];
}

nvinfer1::IPluginV2DynamicExt* PatchAttentionPlugin::clone() const noexcept
{
    try
    {
        auto* plugin = new PatchAttentionPlugin(mParams, mNbInputs);
        plugin->mMaxWorkspaceSize = mMaxWorkspaceSize;
        plugin->mConfigRejected = mConfigRejected;
        plugin->setPluginNamespace(mNamespace.c_str());
        return plugin;
    }
    catch (...)
    {
        logMessage(ILogger::Severity::kERROR, "clone: out of memory");
    }
    return nullptr;
}

DimsExprs PatchAttentionPlugin::getOutputDimensions(
    int32_t outputIndex, DimsExprs const* inputs, int32_t nbInputs, nvinfer1::IExprBuilder& /*exprBuilder*/) noexcept
{
    if (outputIndex != 0 || inputs == nullptr || nbInputs < 1 || inputs[kPA_RES].nbDims != 4)
    {
        logMessage(ILogger::Severity::kERROR,
            "getOutputDimensions: expects output 0 and a 4-D res (N, C, H, W) (output %d, %d inputs)", outputIndex,
            nbInputs);
        return DimsExprs{};
    }
    return inputs[kPA_RES]; // same N, C, H, W expressions as res
}

bool PatchAttentionPlugin::supportsFormatCombination(
    int32_t pos, PluginTensorDesc const* inOut, int32_t nbInputs, int32_t nbOutputs) noexcept
{
    return inOut != nullptr
        && formatSupported(
            pos, nbInputs, nbOutputs, [inOut](int32_t i) -> PluginTensorDesc const& { return inOut[i]; });
}

void PatchAttentionPlugin::configurePlugin(
    DynamicPluginTensorDesc const* in, int32_t nbInputs, DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept
{
    char why[kMESSAGE_SIZE];
    std::array<Dims, kPA_NB_INPUTS_WITH_SKIP> dims{};
    if (in == nullptr || out == nullptr || nbOutputs != 1
        || !collectDims(nbInputs, [in](int32_t i) { return in[i].desc.dims; }, dims))
    {
        logMessage(ILogger::Severity::kERROR, "configurePlugin: expects 5 or 6 inputs and 1 output, got %d and %d",
            nbInputs, nbOutputs);
        return;
    }
    // Build phase: desc.dims may hold wildcards (-1) and min/max are the profile's kMIN/kMAX; execution phase (and
    // the builder's kOPT call): every size is known, check them all (8.5.3 include/NvInferRuntime.h:430-444).
    bool const concrete = allKnown(dims[kPA_RES]);
    if (!checkInputDims(dims.data(), nbInputs, mParams, concrete, why, sizeof(why))
        || (!concrete && !checkProfileBounds(in, nbInputs, mParams, why, sizeof(why))))
    {
        logMessage(ILogger::Severity::kERROR, "configurePlugin: %s", why);
        // configurePlugin cannot fail before TensorRT 10: a rejected build-phase configuration makes enqueue fail.
        // An execution-phase shape is checked again by enqueue, and may be corrected by the next configurePlugin.
        mConfigRejected = mConfigRejected || !concrete;
        return;
    }
    mNbInputs = nbInputs;
    mMaxWorkspaceSize = std::max(mMaxWorkspaceSize, workspaceFor(resBound(in[kPA_RES], in[kPA_RES].max), mParams));
}

size_t PatchAttentionPlugin::getWorkspaceSize(PluginTensorDesc const* inputs, int32_t nbInputs,
    PluginTensorDesc const* /*outputs*/, int32_t /*nbOutputs*/) const noexcept
{
    if (inputs == nullptr || nbInputs < kPA_NB_INPUTS_NO_SKIP)
    {
        return mMaxWorkspaceSize;
    }
    // "sufficient ... for inputs and outputs of the given size or any smaller problem" (8.5.3 NvInferRuntime.h:466-468)
    return std::max(mMaxWorkspaceSize, workspaceFor(inputs[kPA_RES].dims, mParams));
}

int32_t PatchAttentionPlugin::enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* /*outputDesc*/,
    void const* const* inputs, void* const* outputs, void* workspace, cudaStream_t stream) noexcept
{
    if (mConfigRejected)
    {
        logMessage(ILogger::Severity::kERROR,
            "enqueue: configurePlugin rejected the network's or the optimisation profile's shapes (logged then)");
        return 1;
    }
    return runForward(inputDesc, inputs, outputs, workspace, stream, mParams, mNbInputs);
}

PatchAttentionPluginCreator::PatchAttentionPluginCreator() noexcept
    : mFieldNames{{PluginField{kFIELD_GRID_H, nullptr, PluginFieldType::kINT32, 1},
          PluginField{kFIELD_GRID_W, nullptr, PluginFieldType::kINT32, 1}}}
    , mFieldCollection{static_cast<int32_t>(mFieldNames.size()), mFieldNames.data()}
    , mNamespace{}
{
}

AsciiChar const* PatchAttentionPluginCreator::getPluginName() const noexcept
{
    return kPATCH_ATTENTION_PLUGIN_NAME;
}

AsciiChar const* PatchAttentionPluginCreator::getPluginVersion() const noexcept
{
    return kPATCH_ATTENTION_PLUGIN_VERSION;
}

PluginFieldCollection const* PatchAttentionPluginCreator::getFieldNames() noexcept
{
    return &mFieldCollection;
}

nvinfer1::IPluginV2DynamicExt* PatchAttentionPluginCreator::createPlugin(
    AsciiChar const* name, PluginFieldCollection const* fc) noexcept
{
    char why[kMESSAGE_SIZE];
    PatchAttentionParams params{0, 0};
    int32_t nbInputs{0};
    if (!parseFields(fc, params, nbInputs, why, sizeof(why)))
    {
        logMessage(ILogger::Severity::kERROR, "createPlugin(%s): %s", name != nullptr ? name : "", why);
        return nullptr;
    }
    try
    {
        auto* plugin = new PatchAttentionPlugin(params, nbInputs);
        plugin->setPluginNamespace(mNamespace.c_str());
        return plugin;
    }
    catch (...)
    {
        logMessage(ILogger::Severity::kERROR, "createPlugin: out of memory");
    }
    return nullptr;
}

nvinfer1::IPluginV2DynamicExt* PatchAttentionPluginCreator::deserializePlugin(
    AsciiChar const* name, void const* serialData, size_t serialLength) noexcept
{
    if (serialData == nullptr || serialLength != PatchAttentionPlugin::kSERIALIZED_SIZE)
    {
        logMessage(ILogger::Severity::kERROR, "deserializePlugin(%s): expected %zu bytes, got %zu",
            name != nullptr ? name : "", PatchAttentionPlugin::kSERIALIZED_SIZE, serialLength);
        return nullptr;
    }
    int32_t values[3] = {0, 0, 0};
    std::memcpy(values, serialData, sizeof(values));
    PatchAttentionParams const params{values[0], values[1]};
    int32_t const nbInputs = values[2];
    if (params.gridH <= 0 || params.gridW <= 0
        || (nbInputs != 0 && nbInputs != kPA_NB_INPUTS_NO_SKIP && nbInputs != kPA_NB_INPUTS_WITH_SKIP))
    {
        logMessage(ILogger::Severity::kERROR, "deserializePlugin(%s): corrupt data (grid %dx%d, %d inputs)",
            name != nullptr ? name : "", params.gridH, params.gridW, nbInputs);
        return nullptr;
    }
    try
    {
        auto* plugin = new PatchAttentionPlugin(params, nbInputs);
        plugin->setPluginNamespace(mNamespace.c_str());
        return plugin;
    }
    catch (...)
    {
        logMessage(ILogger::Severity::kERROR, "deserializePlugin: out of memory");
    }
    return nullptr;
}

void PatchAttentionPluginCreator::setPluginNamespace(AsciiChar const* pluginNamespace) noexcept
{
    try
    {
        mNamespace = pluginNamespace != nullptr ? pluginNamespace : "";
    }
    catch (...)
    {
        logMessage(ILogger::Severity::kERROR, "setPluginNamespace: out of memory");
    }
}

AsciiChar const* PatchAttentionPluginCreator::getPluginNamespace() const noexcept
{
    return mNamespace.c_str();
}

#endif // NV_TENSORRT_MAJOR

} // namespace dsrir

// ================================================================================================ entry points

#if DSRIR_TRT_HAS_LOGGER_FINDER
extern "C" DSRIR_TRT_PLUGIN_API void setLoggerFinder(nvinfer1::ILoggerFinder* finder)
{
    if (finder != nullptr)
    {
        dsrir::gLoggerFinder.store(finder, std::memory_order_release);
    }
}
#endif

#if NV_TENSORRT_MAJOR >= 10
extern "C" DSRIR_TRT_PLUGIN_API nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators)
{
    static dsrir::PatchAttentionPluginCreator sCreator;
    static nvinfer1::IPluginCreatorInterface* const sCreators[] = {&sCreator};
    nbCreators = static_cast<int32_t>(sizeof(sCreators) / sizeof(sCreators[0]));
    return sCreators;
}
#else
extern "C" DSRIR_TRT_PLUGIN_API nvinfer1::IPluginCreator* const* getPluginCreators(int32_t& nbCreators)
{
    static dsrir::PatchAttentionPluginCreator sCreator;
    static nvinfer1::IPluginCreator* const sCreators[] = {&sCreator};
    nbCreators = static_cast<int32_t>(sizeof(sCreators) / sizeof(sCreators[0]));
    return sCreators;
}
#endif

// ================================================================================================ registration

#if DSRIR_TRT_STATIC_REGISTRATION
// Registers a creator under namespace "" when the library is loaded (ctypes.CDLL, dlopen, trtexec --staticPlugins
// or --plugins). Build with -DDSRIR_TRT_STATIC_REGISTRATION=0 for a library meant only for loadLibrary.
namespace dsrir
{
REGISTER_TENSORRT_PLUGIN(PatchAttentionPluginCreator);
} // namespace dsrir
#endif
