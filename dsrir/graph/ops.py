"""The names graphs are read by: the fused patch-attention op and the Q/DQ pair.

``DSRIR_PatchAttention`` is at once the ONNX node's op type, the TensorRT plugin creator's name (TensorRT's ONNX
parser hands a node it has no importer for to the creator of the same name, version and namespace) and the op the
ONNX Runtime CPU path runs, so the exporter, the import rules, the engine builder, the plugin loader and the
runtime must spell it, and its version, namespace and domain, the same way: here.
"""

from __future__ import annotations

import onnx

PLUGIN_OP = "DSRIR_PatchAttention"
PLUGIN_VERSION = "1"
PLUGIN_NAMESPACE = ""
PLUGIN_DOMAIN = "trt.plugins"  # what ONNX Runtime's TensorRT provider uses; TensorRT's parser ignores the domain
PLUGIN_DOMAIN_VERSION = 1
PLUGIN_WEIGHT_SLOTS = (1, 2, 3, 4)  # W1, b1, W2, b2: float32 whatever the graph's precision
STANDARD_DOMAINS = ("", "ai.onnx")
QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})


def plugin_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """The graph's ``DSRIR_PatchAttention`` nodes (any domain but the standard one)."""
    return [node for node in model.graph.node if node.op_type == PLUGIN_OP and node.domain not in STANDARD_DOMAINS]
