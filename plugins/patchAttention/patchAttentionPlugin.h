/*
 * DSRIR_PatchAttention for TensorRT 10 and later: IPluginV3 (IPluginV3OneCore/Build/Runtime) + IPluginCreatorV3One.
 * The plugin's contract (input order, attributes, serialized state, workspace) and the code shared with the
 * TensorRT 8.x implementation (patchAttentionPluginLegacy.h) are in patchAttentionPluginCommon.h.
 *
 * Exported for IPluginRegistry::loadLibrary: `getCreators` (this file) and `setLoggerFinder`
 * (patchAttentionPluginCommon.h). The serialized state is the fields grid_h, grid_w, num_inputs
 * (getFieldsToSerialize), read back by the creator's createPlugin in phase kRUNTIME.
 */
#pragma once

#include "patchAttentionPluginCommon.h"

#include <array>
#include <cstdint>

// IPluginV3 first appears in the 10.x headers (v10.3.0 include/NvInferRuntime.h:686; none in v8.6.1): CMakeLists.txt
// builds patchAttentionPluginLegacy.cpp for TensorRT 8.x instead of this file.
#if NV_TENSORRT_MAJOR < 10
#error "patchAttentionPlugin.cpp is the IPluginV3 plugin (TensorRT >= 10); 8.x builds patchAttentionPluginLegacy.cpp"
#endif

namespace dsrir
{

//! One object exposing the core, build and runtime capabilities.
class PatchAttentionPlugin : public nvinfer1::IPluginV3,
                             public nvinfer1::IPluginV3OneCore,
                             public nvinfer1::IPluginV3OneBuild,
                             public nvinfer1::IPluginV3OneRuntime
{
public:
    //! nbInputs: 5 or 6 when known (deserialization), 0 until configurePlugin/onShapeChange sees the inputs.
    PatchAttentionPlugin(PatchAttentionParams const& params, int32_t nbInputs) noexcept;
    PatchAttentionPlugin(PatchAttentionPlugin const&) = delete;
    PatchAttentionPlugin& operator=(PatchAttentionPlugin const&) = delete;
    ~PatchAttentionPlugin() noexcept override = default;

    // IPluginV3
    nvinfer1::IPluginCapability* getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept override;
    nvinfer1::IPluginV3* clone() noexcept override;

    // IPluginV3OneCore
    nvinfer1::AsciiChar const* getPluginName() const noexcept override;
    nvinfer1::AsciiChar const* getPluginVersion() const noexcept override;
    nvinfer1::AsciiChar const* getPluginNamespace() const noexcept override;

    // IPluginV3OneBuild
    int32_t configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
        nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept override;
    int32_t getOutputDataTypes(nvinfer1::DataType* outputTypes, int32_t nbOutputs,
        nvinfer1::DataType const* inputTypes, int32_t nbInputs) const noexcept override;
    int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs, nvinfer1::DimsExprs const* shapeInputs,
        int32_t nbShapeInputs, nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
        nvinfer1::IExprBuilder& exprBuilder) noexcept override;
    bool supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
        int32_t nbOutputs) noexcept override;
    int32_t getNbOutputs() const noexcept override;
    size_t getWorkspaceSize(nvinfer1::DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
        nvinfer1::DynamicPluginTensorDesc const* outputs, int32_t nbOutputs) const noexcept override;
    char const* getMetadataString() noexcept override;

    // IPluginV3OneRuntime
    int32_t onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs, nvinfer1::PluginTensorDesc const* out,
        int32_t nbOutputs) noexcept override;
    int32_t enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const* outputDesc,
        void const* const* inputs, void* const* outputs, void* workspace, cudaStream_t stream) noexcept override;
    nvinfer1::IPluginV3* attachToContext(nvinfer1::IPluginResourceContext* context) noexcept override;
    nvinfer1::PluginFieldCollection const* getFieldsToSerialize() noexcept override;

private:
    PatchAttentionParams mParams;
    int32_t mNbInputs;
    std::array<nvinfer1::PluginField, kPA_NB_SERIAL_VALUES> mSerialFields;
    nvinfer1::PluginFieldCollection mSerialFieldCollection;
    std::array<char, 64> mMetadata; //!< "grid_h=.. grid_w=..", for the engine inspector
};

class PatchAttentionPluginCreator : public nvinfer1::IPluginCreatorV3One
{
public:
    PatchAttentionPluginCreator() noexcept;
    ~PatchAttentionPluginCreator() noexcept override = default;

    nvinfer1::AsciiChar const* getPluginName() const noexcept override;
    nvinfer1::AsciiChar const* getPluginVersion() const noexcept override;
    nvinfer1::AsciiChar const* getPluginNamespace() const noexcept override;
    nvinfer1::PluginFieldCollection const* getFieldNames() noexcept override;
    //! phase kBUILD: fields from the ONNX node or the application (grid_h, grid_w);
    //! phase kRUNTIME: the fields getFieldsToSerialize() wrote (grid_h, grid_w, num_inputs).
    nvinfer1::IPluginV3* createPlugin(nvinfer1::AsciiChar const* name, nvinfer1::PluginFieldCollection const* fc,
        nvinfer1::TensorRTPhase phase) noexcept override;

private:
    std::array<nvinfer1::PluginField, 2> mFieldNames;
    nvinfer1::PluginFieldCollection mFieldCollection;
};

} // namespace dsrir

// Entry point looked up by IPluginRegistry::loadLibrary (trtexec --dynamicPlugins, version-compatible engines).
extern "C"
{
    DSRIR_TRT_PLUGIN_API nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators);
}
