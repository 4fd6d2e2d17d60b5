"""Small ONNX graph edits shared by the export passes (node lists in protobuf need care to rewrite)."""

from __future__ import annotations

from collections.abc import Sequence

import onnx


def replace_nodes(graph: onnx.GraphProto, nodes: Sequence[onnx.NodeProto]) -> None:
    """Make ``nodes`` the graph's node list. They are copied first: messages taken from ``graph.node`` must
    not be relied on once that field is cleared."""
    copies = []
    for node in nodes:
        copied = onnx.NodeProto()
        copied.CopyFrom(node)
        copies.append(copied)
    del graph.node[:]
    graph.node.extend(copies)


def topological_sort(graph: onnx.GraphProto) -> None:
    """Reorder ``graph.node`` so every node follows the producers of its inputs (otherwise stable)."""
    available = {value.name for value in graph.input} | {init.name for init in graph.initializer} | {""}
    pending = list(graph.node)
    ordered: list[onnx.NodeProto] = []
    while pending:
        waiting: list[onnx.NodeProto] = []
        for node in pending:
            if all(name in available for name in node.input):
                ordered.append(node)
                available.update(node.output)
            else:
                waiting.append(node)
        if len(waiting) == len(pending):
            raise ValueError(f"graph has a cycle or a dangling input at node {waiting[0].name!r}")
        pending = waiting
    replace_nodes(graph, ordered)


def drop_value_info(graph: onnx.GraphProto, names: set[str]) -> None:
    """Forget the recorded type/shape of ``names`` (after their type changed)."""
    kept = [value for value in graph.value_info if value.name not in names]
    del graph.value_info[:]
    graph.value_info.extend(kept)
