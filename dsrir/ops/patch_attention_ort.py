"""DSRIR_PatchAttention on ONNX Runtime's CPU, so plugin-flavoured ONNX graphs run without TensorRT.

The TensorRT flavour of the graph has ``DSRIR_PatchAttention`` nodes (inputs ``res, W1, b1, W2, b2``
and optionally ``skip``; INT attributes ``grid_h``, ``grid_w``; STRING ``plugin_version`` and
``plugin_namespace``) in a custom domain. ONNX Runtime runs Python-defined ops through
onnxruntime-extensions, which only serves the domain ``ai.onnx.contrib`` and gives each op a fixed
number of inputs (one op type per name and domain), so the skip form is a second op type:

* ``DSRIR_PatchAttention``      5 float inputs  -> ``res * A``
* ``DSRIR_PatchAttentionSkip``  6 float inputs  -> ``res * A + skip``

:func:`to_contrib_domain` rewrites a copy of the graph onto these two; attributes other than
``grid_h``/``grid_w`` are not declared, so onnxruntime-extensions never reads them. Run with the
options from :func:`session_options_with_patch_attention`. The ops are float32 only, and return
their output through Python, so they are for checking graphs, not for speed.

    model = to_contrib_domain(onnx.load("dsrir_plugin.onnx"))
    sess = onnxruntime.InferenceSession(model.SerializeToString(), session_options_with_patch_attention())
"""

from __future__ import annotations

import copy
import threading
from typing import TYPE_CHECKING, Any

from dsrir.graph.ops import PLUGIN_OP, STANDARD_DOMAINS
from dsrir.ops.patch_attention_numpy import patch_attention_numpy

if TYPE_CHECKING:
    import onnx
    import onnxruntime  # type: ignore[import-untyped]

OP_TYPE_SKIP = PLUGIN_OP + "Skip"
CONTRIB_DOMAIN = "ai.onnx.contrib"
INSTALL_HINT = "pip install 'onnxruntime-extensions>=0.15.2,<0.16'"

_lock = threading.Lock()
_registered = False


def _extensions() -> Any:
    try:
        import onnxruntime_extensions  # type: ignore[import-untyped]
    except ImportError as exc:  # one line that says what to do
        raise ImportError(f"the DSRIR_PatchAttention ORT op needs onnxruntime-extensions: {INSTALL_HINT}") from exc
    return onnxruntime_extensions


def register_patch_attention_ops() -> None:
    """Register both op types with onnxruntime-extensions (once per process; later calls do nothing)."""
    global _registered
    with _lock:
        if _registered:
            return
        ext = _extensions()
        f32, i64 = ext.PyCustomOpDef.dt_float, ext.PyCustomOpDef.dt_int64
        attrs = {"grid_h": i64, "grid_w": i64}

        @ext.onnx_op(op_type=PLUGIN_OP, inputs=[f32] * 5, outputs=[f32], attrs=attrs)
        def _patch_attention(res, w1, b1, w2, b2, grid_h, grid_w):  # type: ignore[no-untyped-def]
            return patch_attention_numpy(res, w1, b1, w2, b2, grid_h, grid_w)

        @ext.onnx_op(op_type=OP_TYPE_SKIP, inputs=[f32] * 6, outputs=[f32], attrs=attrs)
        def _patch_attention_skip(res, w1, b1, w2, b2, skip, grid_h, grid_w):  # type: ignore[no-untyped-def]
            return patch_attention_numpy(res, w1, b1, w2, b2, grid_h, grid_w, skip=skip)

        _registered = True


def session_options_with_patch_attention(
    options: onnxruntime.SessionOptions | None = None,
) -> onnxruntime.SessionOptions:
    """Session options (new, or ``options``) with the custom-op library that runs the DSRIR_PatchAttention ops."""
    ext = _extensions()
    import onnxruntime  # type: ignore[import-untyped]

    register_patch_attention_ops()
    options = options if options is not None else onnxruntime.SessionOptions()
    options.register_custom_ops_library(ext.get_library_path())
    return options


def _rewrite_graph(graph: onnx.GraphProto | onnx.FunctionProto, domains: set[str]) -> int:
    """Move DSRIR_PatchAttention nodes of ``graph`` (or a function) and its subgraphs to the contrib ops; count them."""
    import onnx

    count = 0
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                count += _rewrite_graph(attribute.g, domains)
            elif attribute.type == onnx.AttributeProto.GRAPHS:
                for sub in attribute.graphs:
                    count += _rewrite_graph(sub, domains)
        if node.op_type not in (PLUGIN_OP, OP_TYPE_SKIP) or node.domain in STANDARD_DOMAINS:
            continue
        inputs = list(node.input)
        while inputs and inputs[-1] == "":  # an omitted optional skip may be written as an empty name
            inputs.pop()
        if len(inputs) not in (5, 6) or "" in inputs:
            raise ValueError(
                f"{PLUGIN_OP} node {node.name!r} needs inputs [res, W1, b1, W2, b2] and optionally skip, got {inputs}"
            )
        names = {a.name for a in node.attribute}
        missing = {"grid_h", "grid_w"} - names
        if missing:
            raise ValueError(f"{PLUGIN_OP} node {node.name!r} lacks the INT attribute(s) {sorted(missing)}")
        domains.add(node.domain)
        del node.input[:]
        node.input.extend(inputs)
        node.op_type = OP_TYPE_SKIP if len(inputs) == 6 else PLUGIN_OP
        node.domain = CONTRIB_DOMAIN
        count += 1
    return count


def to_contrib_domain(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` whose DSRIR_PatchAttention nodes (any custom domain) use the ONNX Runtime CPU ops.

    Adds the ``ai.onnx.contrib`` opset import and drops the imports of the domains that only those
    nodes used; other attributes (``plugin_version``, ``plugin_namespace``) stay and are ignored.
    """
    import onnx

    out = copy.deepcopy(model)
    moved: set[str] = set()
    _rewrite_graph(out.graph, moved)
    for function in out.functions:  # model-local functions hold nodes too
        if _rewrite_graph(function, moved) and not any(op.domain == CONTRIB_DOMAIN for op in function.opset_import):
            function.opset_import.append(onnx.helper.make_opsetid(CONTRIB_DOMAIN, 1))
    still_used: set[str] = set()

    def collect(graph: Any) -> None:
        for node in graph.node:
            still_used.add(node.domain)
            for attribute in node.attribute:
                if attribute.HasField("g"):
                    collect(attribute.g)
                for sub in attribute.graphs:
                    collect(sub)

    collect(out.graph)
    for function in out.functions:
        collect(function)
    keep = [op for op in out.opset_import if op.domain not in moved or op.domain in still_used]
    if not any(op.domain == CONTRIB_DOMAIN for op in keep):
        keep.append(onnx.helper.make_opsetid(CONTRIB_DOMAIN, 1))
    del out.opset_import[:]
    out.opset_import.extend(keep)
    return out
