/*
 * DSRIR_PatchAttention TensorRT plugin for TensorRT >= 10: IPluginV3 class, IPluginCreatorV3One creator, the
 * getCreators entry point and the static registration (see patchAttentionPlugin.h). The checks, the workspace size and
 * the enqueue body are shared with the 8.x plugin (patchAttentionPluginCommon.cpp); the CUDA work is done by
 * dsrir::patchAttentionForward in patchAttentionKernel.cu. This file holds no kernel code.
 */
#include "patchAttentionPlugin.h"

#include <cstdio>

using nvinfer1::AsciiChar;
using nvinfer1::DataType;
using nvinfer1::DimsExprs;
using nvinfer1::DynamicPluginTensorDesc;
using nvinfer1::ILogger;
using nvinfer1::IPluginCapability;
using nvinfer1::IPluginV3;
using nvinfer1::PluginCapabilityType;
using nvinfer1::PluginField;
using nvinfer1::PluginFieldCollection;
using nvinfer1::PluginFieldType;
using nvinfer1::PluginTensorDesc;
using nvinfer1::TensorRTPhase;

namespace dsrir
{

PatchAttentionPlugin::PatchAttentionPlugin(PatchAttentionParams const& params, int32_t nbInputs) noexcept
    : mParams(params)
    , mNbInputs(nbInputs)
    , mSerialFields{{PluginField{kPA_FIELD_GRID_H, &mParams.gridH, PluginFieldType::kINT32, 1},
          PluginField{kPA_FIELD_GRID_W, &mParams.gridW, PluginFieldType::kINT32, 1},
          PluginField{kPA_FIELD_NUM_INPUTS, &mNbInputs, PluginFieldType::kINT32, 1}}}
    , mSerialFieldCollection{static_cast<int32_t>(mSerialFields.size()), mSerialFields.data()}
    , mMetadata{}
{
    std::snprintf(mMetadata.data(), mMetadata.size(), "%s=%d %s=%d", kPA_FIELD_GRID_H, mParams.gridH,
        kPA_FIELD_GRID_W, mParams.gridW);
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
    char why[kPA_MESSAGE_SIZE];
    PatchAttentionInputDims dims{};
    if (!readInputDims("configurePlugin", in, nbInputs, out, nbOutputs, dims))
    {
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
    // The builder runs the plugin at the profile's kOPT shape: reject one the kernel cannot run. The 8.x
    // DynamicPluginTensorDesc has no opt member (v8.6.1 include/NvInferRuntime.h:320-330): no counterpart in
    // patchAttentionPluginLegacy.cpp.
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
    if (outputTypes == nullptr || inputTypes == nullptr || nbOutputs != 1 || !isPatchAttentionInputCount(nbInputs))
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
    if (inputs == nullptr || outputs == nullptr || nbOutputs != 1 || !isPatchAttentionInputCount(nbInputs))
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
    return formatSupported(pos, inOut, nbInputs, nbOutputs);
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
    return profileWorkspaceFor(inputs[kPA_RES], mParams);
}

char const* PatchAttentionPlugin::getMetadataString() noexcept
{
    return mMetadata.data();
}

int32_t PatchAttentionPlugin::onShapeChange(
    PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* out, int32_t nbOutputs) noexcept
{
    char why[kPA_MESSAGE_SIZE];
    PatchAttentionInputDims dims{};
    if (!readInputDims("onShapeChange", in, nbInputs, out, nbOutputs, dims))
    {
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
    : mFieldNames{creatorFieldNames()}
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
    PatchAttentionParams params{0, 0};
    int32_t nbInputs{0};
    if (!parsePluginFields(name, fc, params, nbInputs))
    {
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

} // namespace dsrir

// ================================================================================================ entry point

extern "C" DSRIR_TRT_PLUGIN_API nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators)
{
    static dsrir::PatchAttentionPluginCreator sCreator;
    static nvinfer1::IPluginCreatorInterface* const sCreators[] = {&sCreator};
    nbCreators = static_cast<int32_t>(sizeof(sCreators) / sizeof(sCreators[0]));
    return sCreators;
}

// ================================================================================================ registration

#if DSRIR_TRT_STATIC_REGISTRATION
// Registers a creator under namespace "" when the library is loaded (ctypes.CDLL, dlopen, trtexec --staticPlugins).
// Build with -DDSRIR_TRT_STATIC_REGISTRATION=0 for a library meant only for loadLibrary.
namespace dsrir
{
REGISTER_TENSORRT_PLUGIN(PatchAttentionPluginCreator);
} // namespace dsrir
#endif
