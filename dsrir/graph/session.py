"""The one way this toolkit opens an ONNX Runtime session, with the one CPU path for plugin graphs.

``DSRIR_PatchAttention`` exists only as a TensorRT plugin, so a graph with such nodes runs on ONNX Runtime only
through onnxruntime-extensions' float32 CPU ops (:mod:`dsrir.ops.patch_attention_ort`): the exporter's parity
check, simplification and the runtime's ONNX Runtime backend all take this path, FP16 graphs included, so what the
exporter checked is what the runtime runs. That path is slow and needs onnxruntime-extensions (ImportError with
the install line otherwise); graphs without plugin nodes never touch it.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import onnx

from dsrir.graph.edit import replace_nodes
from dsrir.graph.ops import PLUGIN_OP, STANDARD_DOMAINS, plugin_nodes

CPU = ("CPUExecutionProvider",)


def for_cpu(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy that ONNX Runtime on CPU can run: plugin nodes on onnxruntime-extensions' float32 ops.

    Those ops are float32 only, so in an FP16 graph (one with float16 weights, as :mod:`dsrir.graph.fp16`
    makes them, where every activation is float16) each node's ``res``/``skip`` is cast to float32 and its
    output back to float16; the plugin computes in float32 too. Needs onnxruntime-extensions.
    """
    from dsrir.ops.patch_attention_ort import to_contrib_domain

    model = copy.deepcopy(model)
    graph = model.graph
    fp16 = any(init.data_type == onnx.TensorProto.FLOAT16 for init in graph.initializer)
    rebuilt: list[onnx.NodeProto] = []
    for node in graph.node:
        if not fp16 or node.op_type != PLUGIN_OP or node.domain in STANDARD_DOMAINS:
            rebuilt.append(node)
            continue
        for slot in [0, 5] if len(node.input) > 5 and node.input[5] else [0]:
            cast_name = f"{node.input[slot]}_{node.name}_fp32"
            rebuilt.append(onnx.helper.make_node("Cast", [node.input[slot]], [cast_name], to=onnx.TensorProto.FLOAT))
            node.input[slot] = cast_name
        result = node.output[0]
        node.output[0] = f"{result}_fp32"
        rebuilt.append(node)
        rebuilt.append(onnx.helper.make_node("Cast", [node.output[0]], [result], to=onnx.TensorProto.FLOAT16))
    replace_nodes(graph, rebuilt)
    return to_contrib_domain(model)


def ort_session(
    model: onnx.ModelProto, options: Any = None, providers: Sequence[str] = CPU, path: Path | None = None
) -> Any:
    """An ``InferenceSession`` of ``model`` with ``options`` on ``providers`` (best first).

    A graph with plugin nodes runs on the CPU whatever ``providers`` say (see above). ``path``: the file ``model``
    was read from, unchanged, which ONNX Runtime then reads itself instead of a serialised copy.
    """
    import onnxruntime  # type: ignore[import-untyped]

    options = options if options is not None else onnxruntime.SessionOptions()
    payload: str | bytes = str(path) if path is not None else b""
    if plugin_nodes(model):
        from dsrir.ops.patch_attention_ort import session_options_with_patch_attention

        options = session_options_with_patch_attention(options)
        payload, providers = for_cpu(model).SerializeToString(), CPU
    elif path is None:
        payload = model.SerializeToString()
    return onnxruntime.InferenceSession(payload, options, providers=list(providers))


def cpu_session(model: onnx.ModelProto, threads: int = 0) -> Any:
    """A quiet CPU session for checks (parity, simplification, QAT's export): ``threads`` 0 lets ORT choose."""
    import onnxruntime  # type: ignore[import-untyped]

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    return ort_session(model, options)
