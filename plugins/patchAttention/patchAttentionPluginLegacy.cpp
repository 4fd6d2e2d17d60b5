/*
 * DSRIR_PatchAttention TensorRT plugin for TensorRT 8.5 / 8.6: IPluginV2DynamicExt class, IPluginCreator creator, the
 * getPluginCreators entry point and the static registration (see patchAttentionPluginLegacy.h). The checks, the
 * workspace size and the enqueue body are shared with the TensorRT >= 10 plugin (patchAttentionPluginCommon.cpp); the
 * CUDA work is done by dsrir::patchAttentionForward in patchAttentionKernel.cu. This file holds no kernel code.
 */
#include "patchAttentionPluginLegacy.h"

#include <algorithm>
#include <cstring>

using nvinfer1::AsciiChar;
using nvinfer1::DataType;
using nvinfer1::DimsExprs;
using nvinfer1::DynamicPluginTensorDesc;
using nvinfer1::ILogger;
using nvinfer1::PluginFieldCollection;
using nvinfer1::PluginTensorDesc;

namespace dsrir
{
namespace
{

//! The namespace setter of the plugin and of the creator: nullptr means "".
void assignNamespace(std::string& target, AsciiChar const* pluginNamespace) noexcept
{
    try
    {
        target = pluginNamespace != nullptr ? pluginNamespace : "";
    }
    catch (...)
    {
        logMessage(ILogger::Severity::kERROR, "setPluginNamespace: out of memory");
    }
}

//! A new plugin in `pluginNamespace`; nullptr, logged as "<caller>: out of memory", when it cannot be allocated.
PatchAttentionPluginLegacy* newPlugin(char const* caller, PatchAttentionParams const& params, int32_t nbInputs,
    std::string const& pluginNamespace) noexcept
{
    try
    {
        auto* plugin = new PatchAttentionPluginLegacy(params, nbInputs);
        plugin->setPluginNamespace(pluginNamespace.c_str());
        return plugin;
    }
    catch (...)
    {
        logMessage(ILogger::Severity::kERROR, "%s: out of memory", caller);
    }
    return nullptr;
}

} // namespace

PatchAttentionPluginLegacy::PatchAttentionPluginLegacy(PatchAttentionParams const& params, int32_t nbInputs) noexcept
    : mParams(params)
    , mNbInputs(nbInputs)
{
}

AsciiChar const* PatchAttentionPluginLegacy::getPluginType() const noexcept
{
    return kPATCH_ATTENTION_PLUGIN_NAME;
}

AsciiChar const* PatchAttentionPluginLegacy::getPluginVersion() const noexcept
{
    return kPATCH_ATTENTION_PLUGIN_VERSION;
}

int32_t PatchAttentionPluginLegacy::getNbOutputs() const noexcept
{
    return 1;
}

int32_t PatchAttentionPluginLegacy::initialize() noexcept
{
    return 0;
}

void PatchAttentionPluginLegacy::terminate() noexcept {}

size_t PatchAttentionPluginLegacy::getSerializationSize() const noexcept
{
    return kSERIALIZED_SIZE;
}

void PatchAttentionPluginLegacy::serialize(void* buffer) const noexcept
{
    if (buffer == nullptr)
    {
        logMessage(ILogger::Severity::kERROR, "serialize: null buffer");
        return;
    }
    int32_t const values[kPA_NB_SERIAL_VALUES] = {mParams.gridH, mParams.gridW, mNbInputs};
    static_assert(sizeof(values) == kSERIALIZED_SIZE, "serialized layout");
    std::memcpy(buffer, values, sizeof(values));
}

void PatchAttentionPluginLegacy::destroy() noexcept
{
    delete this;
}

void PatchAttentionPluginLegacy::setPluginNamespace(AsciiChar const* pluginNamespace) noexcept
{
    assignNamespace(mNamespace, pluginNamespace);
}

AsciiChar const* PatchAttentionPluginLegacy::getPluginNamespace() const noexcept
{
    return mNamespace.c_str();
}

DataType PatchAttentionPluginLegacy::getOutputDataType(
    int32_t index, DataType const* inputTypes, int32_t nbInputs) const noexcept
{
    if (index != 0 || inputTypes == nullptr || nbInputs < 1)
    {
        logMessage(ILogger::Severity::kERROR, "getOutputDataType: bad query (output %d, %d inputs)", index, nbInputs);
        return DataType::kFLOAT;
    }
    return inputTypes[kPA_RES];
}

nvinfer1::IPluginV2DynamicExt* PatchAttentionPluginLegacy::clone() const noexcept
{
    PatchAttentionPluginLegacy* const plugin = newPlugin("clone", mParams, mNbInputs, mNamespace);
    if (plugin != nullptr)
    {
        plugin->mMaxWorkspaceSize = mMaxWorkspaceSize;
        plugin->mConfigRejected = mConfigRejected;
    }
    return plugin;
}

DimsExprs PatchAttentionPluginLegacy::getOutputDimensions(
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

bool PatchAttentionPluginLegacy::supportsFormatCombination(
    int32_t pos, PluginTensorDesc const* inOut, int32_t nbInputs, int32_t nbOutputs) noexcept
{
    return formatSupported(pos, inOut, nbInputs, nbOutputs);
}

void PatchAttentionPluginLegacy::configurePlugin(
    DynamicPluginTensorDesc const* in, int32_t nbInputs, DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept
{
    char why[kPA_MESSAGE_SIZE];
    PatchAttentionInputDims dims{};
    if (!readInputDims("configurePlugin", in, nbInputs, out, nbOutputs, dims))
    {
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
    mMaxWorkspaceSize = std::max(mMaxWorkspaceSize, profileWorkspaceFor(in[kPA_RES], mParams));
}

size_t PatchAttentionPluginLegacy::getWorkspaceSize(PluginTensorDesc const* inputs, int32_t nbInputs,
    PluginTensorDesc const* /*outputs*/, int32_t /*nbOutputs*/) const noexcept
{
    if (inputs == nullptr || nbInputs < kPA_NB_INPUTS_NO_SKIP)
    {
        return mMaxWorkspaceSize;
    }
    // "sufficient ... for inputs and outputs of the given size or any smaller problem" (8.5.3 NvInferRuntime.h:466-468)
    return std::max(mMaxWorkspaceSize, workspaceFor(inputs[kPA_RES].dims, mParams));
}

int32_t PatchAttentionPluginLegacy::enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* /*outputDesc*/,
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

PatchAttentionPluginLegacyCreator::PatchAttentionPluginLegacyCreator() noexcept
    : mFieldNames{creatorFieldNames()}
    , mFieldCollection{static_cast<int32_t>(mFieldNames.size()), mFieldNames.data()}
    , mNamespace{}
{
}

AsciiChar const* PatchAttentionPluginLegacyCreator::getPluginName() const noexcept
{
    return kPATCH_ATTENTION_PLUGIN_NAME;
}

AsciiChar const* PatchAttentionPluginLegacyCreator::getPluginVersion() const noexcept
{
    return kPATCH_ATTENTION_PLUGIN_VERSION;
}

PluginFieldCollection const* PatchAttentionPluginLegacyCreator::getFieldNames() noexcept
{
    return &mFieldCollection;
}

nvinfer1::IPluginV2DynamicExt* PatchAttentionPluginLegacyCreator::createPlugin(
    AsciiChar const* name, PluginFieldCollection const* fc) noexcept
{
    PatchAttentionParams params{0, 0};
    int32_t nbInputs{0};
    if (!parsePluginFields(name, fc, params, nbInputs))
    {
        return nullptr;
    }
    return newPlugin("createPlugin", params, nbInputs, mNamespace);
}

nvinfer1::IPluginV2DynamicExt* PatchAttentionPluginLegacyCreator::deserializePlugin(
    AsciiChar const* name, void const* serialData, size_t serialLength) noexcept
{
    if (serialData == nullptr || serialLength != PatchAttentionPluginLegacy::kSERIALIZED_SIZE)
    {
        logMessage(ILogger::Severity::kERROR, "deserializePlugin(%s): expected %zu bytes, got %zu",
            name != nullptr ? name : "", PatchAttentionPluginLegacy::kSERIALIZED_SIZE, serialLength);
        return nullptr;
    }
    int32_t values[kPA_NB_SERIAL_VALUES] = {0, 0, 0};
    std::memcpy(values, serialData, sizeof(values));
    PatchAttentionParams const params{values[0], values[1]};
    int32_t const nbInputs = values[2];
    if (params.gridH <= 0 || params.gridW <= 0 || !isSerializedInputCount(nbInputs))
    {
        logMessage(ILogger::Severity::kERROR, "deserializePlugin(%s): corrupt data (grid %dx%d, %d inputs)",
            name != nullptr ? name : "", params.gridH, params.gridW, nbInputs);
        return nullptr;
    }
    return newPlugin("deserializePlugin", params, nbInputs, mNamespace);
}

void PatchAttentionPluginLegacyCreator::setPluginNamespace(AsciiChar const* pluginNamespace) noexcept
{
    assignNamespace(mNamespace, pluginNamespace);
}

AsciiChar const* PatchAttentionPluginLegacyCreator::getPluginNamespace() const noexcept
{
    return mNamespace.c_str();
}

} // namespace dsrir

// ================================================================================================ entry point

extern "C" DSRIR_TRT_PLUGIN_API nvinfer1::IPluginCreator* const* getPluginCreators(int32_t& nbCreators)
{
    static dsrir::PatchAttentionPluginLegacyCreator sCreator;
    static nvinfer1::IPluginCreator* const sCreators[] = {&sCreator};
    nbCreators = static_cast<int32_t>(sizeof(sCreators) / sizeof(sCreators[0]));
    return sCreators;
}

// ================================================================================================ registration

#if DSRIR_TRT_STATIC_REGISTRATION
// Registers a creator under namespace "" when the library is loaded (ctypes.CDLL, dlopen, trtexec --plugins or, from
// 8.6, --staticPlugins). Build with -DDSRIR_TRT_STATIC_REGISTRATION=0 for a library meant only for loadLibrary (8.6).
namespace dsrir
{
REGISTER_TENSORRT_PLUGIN(PatchAttentionPluginLegacyCreator);
} // namespace dsrir
#endif
