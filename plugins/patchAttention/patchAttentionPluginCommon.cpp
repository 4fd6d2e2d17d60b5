/*
 * DSRIR_PatchAttention TensorRT plugin: the code both implementations share (see patchAttentionPluginCommon.h):
 * logging and setLoggerFinder, field parsing, shape and format checks, workspace size, the enqueue body. Compiled
 * with patchAttentionPlugin.cpp (TensorRT >= 10) or patchAttentionPluginLegacy.cpp (8.5/8.6); holds no kernel code.
 */
#include "patchAttentionPluginCommon.h"

#include <atomic>
#include <climits>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <initializer_list>

using nvinfer1::AsciiChar;
using nvinfer1::DataType;
using nvinfer1::Dims;
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

Dims const& descDims(DynamicPluginTensorDesc const& desc) noexcept
{
    return desc.desc.dims;
}

Dims const& descDims(PluginTensorDesc const& desc) noexcept
{
    return desc.dims;
}

template <typename Desc>
bool readInputDimsOf(char const* caller, Desc const* in, int32_t nbInputs, Desc const* out, int32_t nbOutputs,
    PatchAttentionInputDims& dims) noexcept
{
    if (in == nullptr || out == nullptr || nbOutputs != 1
        || !collectDims(nbInputs, [in](int32_t i) { return descDims(in[i]); }, dims))
    {
        logMessage(ILogger::Severity::kERROR, "%s: expects 5 or 6 inputs and 1 output, got %d and %d", caller, nbInputs,
            nbOutputs);
        return false;
    }
    return true;
}

// ------------------------------------------------------------------------------------------------ formats

PluginTensorDesc const& tensorDesc(DynamicPluginTensorDesc const& desc) noexcept
{
    return desc.desc;
}

PluginTensorDesc const& tensorDesc(PluginTensorDesc const& desc) noexcept
{
    return desc;
}

template <typename Desc>
bool formatSupportedOf(int32_t pos, Desc const* inOut, int32_t nbInputs, int32_t nbOutputs) noexcept
{
    if (inOut == nullptr || !isPatchAttentionInputCount(nbInputs) || nbOutputs != 1 || pos < 0
        || pos >= nbInputs + nbOutputs)
    {
        return false;
    }
    PluginTensorDesc const& desc = tensorDesc(inOut[pos]);
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
    return desc.type == tensorDesc(inOut[kPA_RES]).type; // skip, output
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
        std::snprintf(why, whyLen, "no plugin fields given (needs %s and %s)", kPA_FIELD_GRID_H, kPA_FIELD_GRID_W);
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
        if (std::strcmp(field.name, kPA_FIELD_GRID_H) == 0)
        {
            haveH = readInt32Field(field, params.gridH, why, whyLen);
            if (!haveH)
            {
                return false;
            }
        }
        else if (std::strcmp(field.name, kPA_FIELD_GRID_W) == 0)
        {
            haveW = readInt32Field(field, params.gridW, why, whyLen);
            if (!haveW)
            {
                return false;
            }
        }
        else if (std::strcmp(field.name, kPA_FIELD_NUM_INPUTS) == 0)
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
        std::snprintf(why, whyLen, "missing field %s (INT32, > 0)", haveH ? kPA_FIELD_GRID_W : kPA_FIELD_GRID_H);
        return false;
    }
    if (params.gridH <= 0 || params.gridW <= 0)
    {
        std::snprintf(why, whyLen, "%s=%d and %s=%d must be > 0", kPA_FIELD_GRID_H, params.gridH, kPA_FIELD_GRID_W,
            params.gridW);
        return false;
    }
    if (!isSerializedInputCount(nbInputs))
    {
        std::snprintf(why, whyLen, "%s=%d must be 5 or 6", kPA_FIELD_NUM_INPUTS, nbInputs);
        return false;
    }
    return true;
}

} // namespace

// ------------------------------------------------------------------------------------------------ logging

void logMessage(ILogger::Severity severity, char const* format, ...) noexcept
{
    char text[kPA_MESSAGE_SIZE];
    va_list args;
    va_start(args, format);
    std::vsnprintf(text, sizeof(text), format, args);
    va_end(args);

    char message[kPA_MESSAGE_SIZE + 64];
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

Dims resBound(DynamicPluginTensorDesc const& res, Dims const& bound) noexcept
{
    return bound.nbDims == 4 && allKnown(bound) ? bound : res.desc.dims;
}

size_t workspaceFor(Dims const& res, PatchAttentionParams const& params) noexcept
{
    if (res.nbDims != 4)
    {
        return 0;
    }
    return patchAttentionWorkspaceBytes(res.d[0], res.d[1], params.gridH, params.gridW);
}

size_t profileWorkspaceFor(DynamicPluginTensorDesc const& res, PatchAttentionParams const& params) noexcept
{
    return workspaceFor(resBound(res, res.max), params);
}

bool checkInputDims(Dims const* in, int32_t nbInputs, PatchAttentionParams const& params, bool concrete, char* why,
    size_t whyLen) noexcept
{
    if (!isPatchAttentionInputCount(nbInputs))
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

bool readInputDims(char const* caller, DynamicPluginTensorDesc const* in, int32_t nbInputs,
    DynamicPluginTensorDesc const* out, int32_t nbOutputs, PatchAttentionInputDims& dims) noexcept
{
    return readInputDimsOf(caller, in, nbInputs, out, nbOutputs, dims);
}

bool readInputDims(char const* caller, PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* out,
    int32_t nbOutputs, PatchAttentionInputDims& dims) noexcept
{
    return readInputDimsOf(caller, in, nbInputs, out, nbOutputs, dims);
}

bool checkProfileBounds(DynamicPluginTensorDesc const* in, int32_t nbInputs, PatchAttentionParams const& params,
    char* why, size_t whyLen) noexcept
{
    constexpr size_t kDETAIL_SIZE{kPA_MESSAGE_SIZE / 2};
    char detail[kDETAIL_SIZE];
    PatchAttentionInputDims dims{};
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

bool formatSupported(int32_t pos, PluginTensorDesc const* inOut, int32_t nbInputs, int32_t nbOutputs) noexcept
{
    return formatSupportedOf(pos, inOut, nbInputs, nbOutputs);
}

bool formatSupported(int32_t pos, DynamicPluginTensorDesc const* inOut, int32_t nbInputs, int32_t nbOutputs) noexcept
{
    return formatSupportedOf(pos, inOut, nbInputs, nbOutputs);
}

// ------------------------------------------------------------------------------------------------ execution

int32_t runForward(PluginTensorDesc const* inputDesc, void const* const* inputs, void* const* outputs,
    void* workspace, cudaStream_t stream, PatchAttentionParams const& params, int32_t nbInputs) noexcept
{
    if (!isPatchAttentionInputCount(nbInputs))
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

std::array<PluginField, 2> creatorFieldNames() noexcept
{
    return {{PluginField{kPA_FIELD_GRID_H, nullptr, PluginFieldType::kINT32, 1},
        PluginField{kPA_FIELD_GRID_W, nullptr, PluginFieldType::kINT32, 1}}};
}

bool parsePluginFields(
    AsciiChar const* name, PluginFieldCollection const* fc, PatchAttentionParams& params, int32_t& nbInputs) noexcept
{
    char why[kPA_MESSAGE_SIZE];
    params = PatchAttentionParams{0, 0};
    nbInputs = 0;
    if (!parseFields(fc, params, nbInputs, why, sizeof(why)))
    {
        logMessage(ILogger::Severity::kERROR, "createPlugin(%s): %s", name != nullptr ? name : "", why);
        return false;
    }
    return true;
}

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
