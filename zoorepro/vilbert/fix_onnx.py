"""The document's fix_onnx.py: two graph rewrites applied to the simplified ViLBERT ONNX before ATC.

What the original does (ModelZoo `fix_onnx.py`, built on MagicONNX's OnnxGraph), in this order:

* fix_mul: for every Mul node, every input produced by a Constant node or an initializer is
  clamped in place to [-65504, 65504], printing `Fix value node: <name>`. The target is allennlp's
  `apply_mask`, `values + (1 - mask) * finfo(float32).min`: ATC's default precision mode
  (force_fp16) turns -3.4e38 into -inf, and `0 * -inf` is NaN. -65504 still drives the masked
  attention scores to exp(...) == 0 in softmax.
* fix_gather: every Gather whose indices are a Constant/initializer -1 (torch's export of
  `encoded_layers[:, :, :, -1]` in VilbertBackbone) becomes Slice(starts=[-1], ends=[65504],
  axes=[axis]) + Squeeze(axes=[axis]), printing `Fix <Gather name> succeed.`. Its new nodes are
  named `Slice_<n>`/`Squeeze_<n>` from the digits of torch's `Gather_<n>` name.

What this module does differently, and why:

* Written with the onnx API alone (no MagicONNX).
* Only floating-point constants are clamped (the fp16 overflow is a float problem; an int64
  constant of a shape computation must not change), and a line is printed and counted only for a
  constant whose values actually change.
* A constant that also feeds something other than Mul (another op, a subgraph, a graph output) is
  not clamped in place, which would silently change that other consumer: its Mul consumers are
  rewired to a clamped copy (a new initializer) and the original stays as it was.
* Only scalar -1 indices are rewritten (the document's pattern; a Gather with indices of shape
  [1] keeps the axis and would need no Squeeze). Slice and Squeeze take their starts/ends/axes as
  attributes or as inputs according to the model's opset (Slice inputs from opset 10, Squeeze
  from 13). The end index is the document's 65504; an axis statically longer than that is
  refused, since the slice would then be empty. A negative Gather axis is made non-negative.
* New node and tensor names are derived from the Gather's and made unique against every name in
  the graph, whatever the exporter's naming. An index constant that no node uses any more is removed.
* The result must pass onnx.checker before it is written (atomically).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .. import lineage
from ..errors import ZooreproError
from ..readers import load_onnx
from ..steps.simplify import save_model_atomic

FP16_MAX = 65504.0
SLICE_END = 65504  # the document's Slice end: "to the end" for any axis up to this length
DEFAULT_DOMAINS = ("", "ai.onnx")


@dataclass
class FixCounts:
    mul_constants: int  # constants clamped to the fp16 range
    gathers: int  # Gather(-1) nodes replaced by Slice + Squeeze


class _Names:
    """Every node and tensor name in the graph, to hand out names that collide with none."""

    def __init__(self, graph: onnx.GraphProto):
        self.used = _all_names(graph)

    def fresh(self, base: str) -> str:
        name, k = base, 0
        while name in self.used:
            k += 1
            name = f"{base}_{k}"
        self.used.add(name)
        return name


def _subgraphs(node: onnx.NodeProto) -> list[onnx.GraphProto]:
    """The bodies of If/Loop/Scan nodes."""
    graphs: list[onnx.GraphProto] = []
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.GRAPH:
            graphs.append(attr.g)
        graphs.extend(attr.graphs)
    return graphs


def _all_names(graph: onnx.GraphProto) -> set[str]:
    """Node and tensor names of the graph and of its subgraphs, which share one namespace."""
    names = {v.name for v in (*graph.input, *graph.output, *graph.value_info)}
    names |= {t.name for t in graph.initializer}
    for node in graph.node:
        names.add(node.name)
        names.update(node.input)
        names.update(node.output)
        for sub in _subgraphs(node):
            names |= _all_names(sub)
    names.discard("")
    return names


def _opset(model: onnx.ModelProto) -> int:
    for entry in model.opset_import:
        if entry.domain in DEFAULT_DOMAINS:
            return entry.version
    raise ZooreproError("the model imports no default-domain (ai.onnx) opset")


def _is_op(node: onnx.NodeProto, op_type: str) -> bool:
    return node.op_type == op_type and node.domain in DEFAULT_DOMAINS


def _subgraph_inputs(node: onnx.NodeProto) -> set[str]:
    """Names a node's subgraphs read, outer-scope names among them."""
    names: set[str] = set()
    for graph in _subgraphs(node):
        for inner in graph.node:
            names.update(inner.input)
            names |= _subgraph_inputs(inner)
    return names


def _constant_value(node: onnx.NodeProto) -> np.ndarray | None:
    """The value of a Constant node given as a tensor or as float(s); None for other forms."""
    for attr in node.attribute:
        if attr.name == "value":
            return numpy_helper.to_array(attr.t)
        if attr.name == "value_float":
            return np.array(attr.f, dtype=np.float32)
        if attr.name == "value_floats":
            return np.array(attr.floats, dtype=np.float32)
    return None


class _Constants:
    """Tensors whose values are in the graph: initializers and Constant node outputs."""

    def __init__(self, graph: onnx.GraphProto):
        self.graph = graph
        self.initializers = {t.name: t for t in graph.initializer}
        self.nodes = {n.output[0]: n for n in graph.node if _is_op(n, "Constant")}

    def __contains__(self, name: str) -> bool:
        return name in self.initializers or name in self.nodes

    def value(self, name: str) -> np.ndarray | None:
        if name in self.initializers:
            return numpy_helper.to_array(self.initializers[name])
        if name in self.nodes:
            return _constant_value(self.nodes[name])
        return None

    def label(self, name: str) -> str:
        """The name the document prints: the Constant node's, or the initializer's."""
        if name in self.nodes:
            return self.nodes[name].name or name
        return name

    def replace(self, name: str, value: np.ndarray) -> None:
        tensor = numpy_helper.from_array(value, name)
        if name in self.initializers:
            self.initializers[name].CopyFrom(tensor)
        else:
            node = self.nodes[name]
            del node.attribute[:]
            node.attribute.append(helper.make_attribute("value", tensor))


def _consumers(graph: onnx.GraphProto) -> dict[str, list[onnx.NodeProto | None]]:
    """tensor name -> the nodes that read it; None stands for a reader that is not a main-graph
    node input (a graph output, or a subgraph reading an outer-scope name)."""
    readers: dict[str, list[onnx.NodeProto | None]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
        for name in _subgraph_inputs(node):
            readers.setdefault(name, []).append(None)
    for out in graph.output:
        readers.setdefault(out.name, []).append(None)
    return readers


def _mul_constant_inputs(graph: onnx.GraphProto, constants: _Constants) -> list[str]:
    """Constant inputs of Mul nodes, each once, in graph order."""
    seen: dict[str, None] = {}
    for node in graph.node:
        if _is_op(node, "Mul"):
            for name in node.input:
                if name in constants:
                    seen.setdefault(name, None)
    return list(seen)


def fix_mul(model: onnx.ModelProto, max_value: float = FP16_MAX) -> int:
    """Clamp the floating-point constants that Mul nodes read to [-max_value, max_value].
    Returns how many constants changed."""
    graph = model.graph
    constants = _Constants(graph)
    readers = _consumers(graph)
    names = _Names(graph)
    fixed = 0
    for name in _mul_constant_inputs(graph, constants):
        value = constants.value(name)
        if value is None or not np.issubdtype(value.dtype, np.floating):
            continue
        clipped = np.clip(value, -max_value, max_value).astype(value.dtype)
        if np.array_equal(clipped, value, equal_nan=True):
            continue
        users = readers[name]
        if all(user is not None and _is_op(user, "Mul") for user in users):
            constants.replace(name, clipped)
        else:
            copy = names.fresh(f"{name}_fp16clip")
            graph.initializer.append(numpy_helper.from_array(clipped, copy))
            for user in users:
                if user is not None and _is_op(user, "Mul"):
                    user.input[:] = [copy if n == name else n for n in user.input]
        print(f"Fix value node: {constants.label(name)}")
        fixed += 1
    return fixed


def _is_scalar_minus_one(value: np.ndarray | None) -> bool:
    return value is not None and value.ndim == 0 and value.dtype.kind in "iu" and int(value) == -1


def _shapes(model: onnx.ModelProto) -> dict[str, list[int | None]]:
    """Tensor name -> inferred shape (None for unknown dims), from onnx shape inference."""
    inferred = onnx.shape_inference.infer_shapes(model).graph
    shapes = {}
    for v in (*inferred.input, *inferred.value_info, *inferred.output):
        if v.type.tensor_type.HasField("shape"):
            shapes[v.name] = [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]
    return shapes


def _gather_axis(node: onnx.NodeProto, shape: list[int | None] | None) -> int:
    """The Gather's axis, non-negative; refuses an axis the document's Slice end cannot reach."""
    axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
    if axis < 0:
        if shape is None:
            raise ZooreproError(f"Gather {node.name!r}: negative axis {axis} on an input of unknown rank")
        axis += len(shape)
    if shape is not None and shape[axis] is not None and shape[axis] > SLICE_END:
        raise ZooreproError(
            f"Gather {node.name!r}: axis {axis} has length {shape[axis]} > {SLICE_END}, "
            f"which Slice(ends=[{SLICE_END}]) would not reach"
        )
    return axis


def _int64_initializer(graph: onnx.GraphProto, names: _Names, base: str, values: list[int]) -> str:
    name = names.fresh(base)
    graph.initializer.append(numpy_helper.from_array(np.array(values, dtype=np.int64), name))
    return name


def _slice_squeeze(graph: onnx.GraphProto, names: _Names, gather: onnx.NodeProto, axis: int,
                   opset: int) -> list[onnx.NodeProto]:
    """Slice(starts=[-1], ends=[SLICE_END], axes=[axis]) + Squeeze(axes=[axis]) computing the
    Gather's output (same output name), in the input-or-attribute form the opset requires."""
    base = gather.name or "Gather"
    data, out = gather.input[0], gather.output[0]
    sliced = names.fresh(f"{out}_last")
    if opset >= 10:
        starts = _int64_initializer(graph, names, f"{base}_slice_starts", [-1])
        ends = _int64_initializer(graph, names, f"{base}_slice_ends", [SLICE_END])
        axes = _int64_initializer(graph, names, f"{base}_slice_axes", [axis])
        slice_node = helper.make_node("Slice", [data, starts, ends, axes], [sliced], name=names.fresh(f"{base}_slice"))
    else:
        slice_node = helper.make_node("Slice", [data], [sliced], name=names.fresh(f"{base}_slice"),
                                      starts=[-1], ends=[SLICE_END], axes=[axis])
    if opset >= 13:
        squeeze_axes = _int64_initializer(graph, names, f"{base}_squeeze_axes", [axis])
        squeeze = helper.make_node("Squeeze", [sliced, squeeze_axes], [out], name=names.fresh(f"{base}_squeeze"))
    else:
        squeeze = helper.make_node("Squeeze", [sliced], [out], name=names.fresh(f"{base}_squeeze"), axes=[axis])
    return [slice_node, squeeze]


def _drop_unused(graph: onnx.GraphProto, candidates: Iterable[str]) -> None:
    """Remove initializers and Constant nodes among `candidates` that nothing reads any more (an
    initializer listed as a graph input stays: removing it would turn it into a real input)."""
    readers = _consumers(graph)
    graph_inputs = {v.name for v in graph.input}
    unused = {name for name in candidates if name not in readers and name not in graph_inputs}
    kept = [t for t in graph.initializer if t.name not in unused]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = [n for n in graph.node if not (_is_op(n, "Constant") and n.output[0] in unused)]
    del graph.node[:]
    graph.node.extend(nodes)


def fix_gather(model: onnx.ModelProto) -> int:
    """Replace each Gather with scalar constant indices -1 by Slice + Squeeze. Returns the count."""
    graph = model.graph
    opset = _opset(model)
    constants = _Constants(graph)
    targets = [n for n in graph.node if _is_op(n, "Gather") and _is_scalar_minus_one(constants.value(n.input[1]))]
    if not targets:
        return 0
    shapes = _shapes(model)
    names = _Names(graph)
    replaced = {id(node) for node in targets}
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        if id(node) not in replaced:
            nodes.append(node)
            continue
        axis = _gather_axis(node, shapes.get(node.input[0]))
        nodes.extend(_slice_squeeze(graph, names, node, axis, opset))
        print(f"Fix {node.name} succeed.")
    del graph.node[:]
    graph.node.extend(nodes)
    _drop_unused(graph, {n.input[1] for n in targets})
    return len(targets)


def fix_model(model: onnx.ModelProto) -> FixCounts:
    """fix_mul then fix_gather (the document's order), in place; the result must pass onnx.checker."""
    counts = FixCounts(mul_constants=fix_mul(model), gathers=fix_gather(model))
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise ZooreproError(f"the fixed model fails onnx.checker: {exc}") from exc
    return counts


def fix_file(in_path: Path | str, out_path: Path | str) -> FixCounts:
    model = load_onnx(in_path)
    counts = fix_model(model)
    save_model_atomic(model, out_path)
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    """`fix_onnx.py in.onnx out.onnx`; exit 2 with a message on refusal."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input_model", type=Path)
    parser.add_argument("output_model", type=Path)
    args = parser.parse_args(argv)
    try:
        counts = fix_file(args.input_model, args.output_model)
        lineage.record(args.output_model, [args.input_model])
    except ZooreproError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"fixed {counts.mul_constants} Mul constant(s), {counts.gathers} Gather(-1) node(s) -> {args.output_model}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
