/*
 * DSRIR_PatchAttention for TensorRT 8.5 / 8.6 (JetPack 5): IPluginV2DynamicExt + IPluginCreator. The plugin's contract
 * (input order, attributes, serialized state, workspace) and the code shared with the TensorRT >= 10 implementation
 * (patchAttentionPlugin.h) are in patchAttentionPluginCommon.h.
 *
 * Exported for IPluginRegistry::loadLibrary: `getPluginCreators` (this file; 8.5 has no loadLibrary, exported anyway)
 * and, from 8.6, `setLoggerFinder` (patchAttentionPluginCommon.h). The serialized state is 12 bytes: grid_h, grid_w,
 * num_inputs as int32, read back by the creator's deserializePlugin.
 */
#pragma once

#include "patchAttentionPluginCommon.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

// IPluginV2DynamicExt is deprecated from TensorRT 10.0 (v10.3.0 include/NvInferRuntime.h:400-403), where the IPluginV3
// plugin (patchAttentionPlugin.cpp) takes its place under the same name, version and namespace: CMakeLists.txt builds
// this file for TensorRT 8.x only, and one library never holds both creators.
#if NV_TENSORRT_MAJOR >= 10
#error "patchAttentionPluginLegacy.cpp (IPluginV2DynamicExt) is for TensorRT 8.x; >= 10 builds patchAttentionPlugin.cpp"
#endif

namespace dsrir
{

class PatchAttentionPluginLegacy : public nvinfer1::IPluginV2DynamicExt
{
public:
    PatchAttentionPluginLegacy(PatchAttentionParams const& params, int32_t nbInputs) noexcept;
    PatchAttentionPluginLegacy(PatchAttentionPluginLegacy const&) = delete;
    PatchAttentionPluginLegacy& operator=(PatchAttentionPluginLegacy const&) = delete;
    ~PatchAttentionPluginLegacy() noexcept override = default;

    //! Bytes that serialize() writes: grid_h, grid_w, num_inputs as int32.
    static constexpr size_t kSERIALIZED_SIZE{kPA_NB_SERIAL_VALUES * sizeof(int32_t)};

    // IPluginV2
    nvinfer1::AsciiChar const* getPluginType() const noexcept override;
    nvinfer1::AsciiChar const* getPluginVersion() const noexcept override;
    int32_t getNbOutputs() const noexcept override;
    int32_t initialize() noexcept override;
    void terminate() noexcept override;
    size_t getSerializationSize() const noexcept override;
    void serialize(void* buffer) const noexcept override;
    void destroy() noexcept override;
    void setPluginNamespace(nvinfer1::AsciiChar const* pluginNamespace) noexcept override;
    nvinfer1::AsciiChar const* getPluginNamespace() const noexcept override;

    // IPluginV2Ext
    nvinfer1::DataType getOutputDataType(
        int32_t index, nvinfer1::DataType const* inputTypes, int32_t nbInputs) const noexcept override;

    // IPluginV2DynamicExt
    nvinfer1::IPluginV2DynamicExt* clone() const noexcept override;
    nvinfer1::DimsExprs getOutputDimensions(int32_t outputIndex, nvinfer1::DimsExprs const* inputs, int32_t nbInputs,
        nvinfer1::IExprBuilder& exprBuilder) noexcept override;
    bool supportsFormatCombination(
        int32_t pos, nvinfer1::PluginTensorDesc const* inOut, int32_t nbInputs, int32_t nbOutputs) noexcept override;
    void configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
        nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept override;
    size_t getWorkspaceSize(nvinfer1::PluginTensorDesc const* inputs, int32_t nbInputs,
        nvinfer1::PluginTensorDesc const* outputs, int32_t nbOutputs) const noexcept override;
    int32_t enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const* outputDesc,
        void const* const* inputs, void* const* outputs, void* workspace, cudaStream_t stream) noexcept override;

private:
    PatchAttentionParams mParams;
    int32_t mNbInputs;
    size_t mMaxWorkspaceSize{0}; //!< from the profile's kMAX N and C seen by configurePlugin
    //! Set when the build-phase configurePlugin rejected the network's or the profile's shapes (and logged why):
    //! configurePlugin returns void before TensorRT 10, so enqueue refuses to run instead.
    bool mConfigRejected{false};
    std::string mNamespace;
};

class PatchAttentionPluginLegacyCreator : public nvinfer1::IPluginCreator
{
public:
    PatchAttentionPluginLegacyCreator() noexcept;
    ~PatchAttentionPluginLegacyCreator() override = default;

    nvinfer1::AsciiChar const* getPluginName() const noexcept override;
    nvinfer1::AsciiChar const* getPluginVersion() const noexcept override;
    nvinfer1::PluginFieldCollection const* getFieldNames() noexcept override;
    nvinfer1::IPluginV2DynamicExt* createPlugin(
        nvinfer1::AsciiChar const* name, nvinfer1::PluginFieldCollection const* fc) noexcept override;
    nvinfer1::IPluginV2DynamicExt* deserializePlugin(
        nvinfer1::AsciiChar const* name, void const* serialData, size_t serialLength) noexcept override;
    void setPluginNamespace(nvinfer1::AsciiChar const* pluginNamespace) noexcept override;
    nvinfer1::AsciiChar const* getPluginNamespace() const noexcept override;

private:
    std::array<nvinfer1::PluginField, 2> mFieldNames;
    nvinfer1::PluginFieldCollection mFieldCollection;
    std::string mNamespace;
};

} // namespace dsrir

// Entry point looked up by IPluginRegistry::loadLibrary (trtexec --dynamicPlugins, version-compatible engines).
extern "C"
{
    //! Exported on 8.5 too (no loadLibrary there): harmless, and the same symbol set for dlopen-based loaders.
    DSRIR_TRT_PLUGIN_API nvinfer1::IPluginCreator* const* getPluginCreators(int32_t& nbCreators);
}
