/*
 * DSRIR_PatchAttention: the DSRIR patch attention as a TensorRT plugin.
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
 * Interface, chosen by the TensorRT headers (NvInferVersion.h):
 *   NV_TENSORRT_MAJOR >= 10  IPluginV3 (IPluginV3OneCore/Build/Runtime) + IPluginCreatorV3One; exported
 *                            `getCreators` and `setLoggerFinder`.
 *   NV_TENSORRT_MAJOR <  10  (8.5/8.6) IPluginV2DynamicExt + IPluginCreator; exported `getPluginCreators`,
 *                            plus `setLoggerFinder` from 8.6 (ILoggerFinder does not exist in 8.5).
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
#include <cstdint>
#include <string>

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

#if NV_TENSORRT_MAJOR >= 10

//! TensorRT 10 and later: one object exposing the core, build and runtime capabilities.
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
    std::array<nvinfer1::PluginField, 3> mSerialFields;
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

#else // NV_TENSORRT_MAJOR < 10: TensorRT 8.5 / 8.6

class PatchAttentionPlugin : public nvinfer1::IPluginV2DynamicExt
{
public:
    PatchAttentionPlugin(PatchAttentionParams const& params, int32_t nbInputs) noexcept;
    PatchAttentionPlugin(PatchAttentionPlugin const&) = delete;
    PatchAttentionPlugin& operator=(PatchAttentionPlugin const&) = delete;
    ~PatchAttentionPlugin() noexcept override = default;

    //! Bytes that serialize() writes: grid_h, grid_w, num_inputs as int32.
    static constexpr size_t kSERIALIZED_SIZE{3 * sizeof(int32_t)};

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

class PatchAttentionPluginCreator : public nvinfer1::IPluginCreator
{
public:
    PatchAttentionPluginCreator() noexcept;
    ~PatchAttentionPluginCreator() override = default;

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

#endif // NV_TENSORRT_MAJOR

} // namespace dsrir

// Entry points looked up by IPluginRegistry::loadLibrary (trtexec --dynamicPlugins, version-compatible engines).
extern "C"
{
#if DSRIR_TRT_HAS_LOGGER_FINDER
    //! Stores the logger finder TensorRT hands to the library; plugin errors go to its logger (else stderr).
    DSRIR_TRT_PLUGIN_API void setLoggerFinder(nvinfer1::ILoggerFinder* finder);
#endif
#if NV_TENSORRT_MAJOR >= 10
    DSRIR_TRT_PLUGIN_API nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators);
#else
    //! Exported on 8.5 too (no loadLibrary there): harmless, and the same symbol set for dlopen-based loaders.
    DSRIR_TRT_PLUGIN_API nvinfer1::IPluginCreator* const* getPluginCreators(int32_t& nbCreators);
#endif
}
