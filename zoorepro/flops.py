"""FLOPs of an ONNX graph at given input shapes, counted from the graph itself.

Method (`METHOD`): 2 x the multiply-accumulates of every MatMul, Gemm and Conv node (and Einsum
contractions of two operands), with every tensor's shape inferred by onnxruntime's symbolic shape
inference after the graph inputs are fixed to the given shapes. Element-wise operations, softmax,
normalization and activations are not counted (they are a few percent of a transformer's FLOPs and
run on other units of most accelerators). Nodes whose shapes cannot be inferred are named in
`uncounted`, never guessed.

Usage: python -m zoorepro.flops MODEL.onnx --shape box_features=1x100x1024 --shape token_ids=1x32 ...
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass, field
from math import prod
from pathlib import Path

METHOD = ("2 x multiply-accumulates of every MatMul, Gemm, Conv and two-operand Einsum node of the ONNX graph, "
          "shapes from onnxruntime's symbolic shape inference at the given input shapes; element-wise ops, "
          "softmax and normalization not counted")


@dataclass
class FlopCount:
    total: float
    by_op: Counter = field(default_factory=Counter)
    uncounted: list[str] = field(default_factory=list)
    method: str = METHOD

    def to_dict(self) -> dict:
        return {"flops": self.total, "by_op": dict(self.by_op), "uncounted": self.uncounted, "method": self.method}


def _fix_inputs(model, shapes: dict[str, tuple[int, ...]]):
    names = {i.name for i in model.graph.input}
    unknown = sorted(set(shapes) - names)
    if unknown:
        raise ValueError(f"not inputs of the graph: {', '.join(unknown)} (inputs: {', '.join(sorted(names))})")
    for graph_input in model.graph.input:
        if graph_input.name not in shapes:
            continue
        dims = graph_input.type.tensor_type.shape.dim
        shape = shapes[graph_input.name]
        if len(dims) != len(shape):
            raise ValueError(f"{graph_input.name}: rank {len(dims)} in the graph, {len(shape)} given")
        for dim, value in zip(dims, shape):
            dim.Clear()
            dim.dim_value = int(value)
    return model


def _shapes(model) -> dict[str, tuple[int, ...] | None]:
    out = {}
    for value in [*model.graph.input, *model.graph.value_info, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        out[value.name] = tuple(d.dim_value for d in dims) if all(d.HasField("dim_value") for d in dims) else None
    for init in model.graph.initializer:
        out[init.name] = tuple(init.dims)
    return out


def _attr(node, name: str, default):
    for a in node.attribute:
        if a.name == name:
            import onnx
            return onnx.helper.get_attribute_value(a)
    return default


def node_flops(node, shapes: dict) -> float | None:
    """2 x MACs of one node, 0 for ops not counted, None when a needed shape is unknown."""
    ins = [shapes.get(n) for n in node.input]
    out = shapes.get(node.output[0]) if node.output else None
    if node.op_type == "MatMul":
        if ins[0] is None or out is None:
            return None
        return 2.0 * prod(out) * ins[0][-1]
    if node.op_type == "Gemm":
        if ins[0] is None or out is None:
            return None
        k = ins[0][0] if _attr(node, "transA", 0) else ins[0][1]
        return 2.0 * prod(out) * k
    if node.op_type == "Conv":
        if ins[1] is None or out is None:
            return None
        weight = ins[1]  # [C_out, C_in / group, k...]
        return 2.0 * prod(out) * prod(weight[1:])
    if node.op_type == "Einsum":
        if len(ins) != 2 or any(s is None for s in ins) or out is None:
            return None
        equation = _attr(node, "equation", b"")
        equation = equation.decode() if isinstance(equation, bytes) else equation
        if "..." in equation:  # broadcast dims: not counted rather than guessed
            return None
        lhs, _, rhs = equation.replace(" ", "").partition("->")
        sizes = {}
        for term, shape in zip(lhs.split(","), ins):
            sizes.update(zip(term, shape))
        return 2.0 * prod(sizes.values())  # every index once: the contraction's multiply-adds
    return 0.0


def count(path: Path | str, shapes: dict[str, tuple[int, ...]]) -> FlopCount:
    """The FLOPs of one run of the graph at `shapes` (input name -> shape; unnamed inputs keep
    the graph's own static shape)."""
    import onnx
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    model = _fix_inputs(onnx.load(str(path)), shapes)
    inferred = SymbolicShapeInference.infer_shapes(model, auto_merge=True)
    known = _shapes(inferred)
    result = FlopCount(0.0)
    for node in inferred.graph.node:
        flops = node_flops(node, known)
        if flops is None:
            result.uncounted.append(f"{node.op_type} {node.name or node.output[0]}")
        elif flops:
            result.total += flops
            result.by_op[node.op_type] += flops
    return result


def parse_shape(text: str) -> tuple[str, tuple[int, ...]]:
    name, _, dims = text.partition("=")
    if not name or not dims:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=D1xD2x...")
    return name, tuple(int(d) for d in dims.split("x"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zoorepro.flops", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="an ONNX file")
    parser.add_argument("--shape", type=parse_shape, action="append", default=[], help="NAME=D1xD2x... per input")
    args = parser.parse_args(argv)
    result = count(args.model, dict(args.shape))
    print(f"{result.total / 1e9:.4f} GFLOP ({', '.join(f'{k} {v / 1e9:.4f}' for k, v in result.by_op.items())})")
    if result.uncounted:
        print(f"not counted (shape unknown): {', '.join(result.uncounted)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


# The FLOPs registry: FLOPs a sample of each claimed model at its claimed shapes, counted from its
# full-size graph by the model's count step (e.g. python -m zoorepro.<model>.count_flops --record).
REGISTRY = Path(__file__).resolve().parent.parent / "claims" / "flops.yaml"
REGISTRY_HEADER = ("# FLOPs a sample of each claimed model at the shapes its claims were measured at, counted from\n"
                   "# the full-size graph (random weights: FLOPs do not depend on weight values) by the step named in\n"
                   "# `counted_by`; read by zoorepro/plausibility.py for the implied % of peak of every throughput claim.\n"
                   "# Written by the count steps (--record); a model without an entry gets no implied % of peak.\n")


def load_registry(path: Path | None = None) -> dict[str, dict]:
    """model -> its entry (flops_per_sample, per_batch_size, shapes, graph, method, counted_by)."""
    from zoorepro import yamlutil

    path = REGISTRY if path is None else Path(path)
    if not path.exists():
        return {}
    return (yamlutil.load_file(path) or {}).get("models", {})


def write_entry(path: Path, model: str, entry: dict) -> None:
    """Set one model's entry, keeping the others."""
    import yaml

    from zoorepro.fsutil import atomic_write_text

    models = load_registry(path)
    models[model] = {**entry, "per_batch_size": {int(k): float(v) for k, v in entry["per_batch_size"].items()},
                     "flops_per_sample": float(entry["flops_per_sample"])}
    atomic_write_text(Path(path), REGISTRY_HEADER + yaml.safe_dump({"models": dict(sorted(models.items()))},
                                                                   sort_keys=False, width=110))


def write_unit_entry(path: Path, model: str, entry: dict) -> None:
    """Set one model's entry counted per unit rather than per sample (e.g. a generative model's FLOPs
    per prefill and per generated token, per checkpoint: plausibility.unit_flops reads it), keeping the
    others."""
    import yaml

    from zoorepro.fsutil import atomic_write_text

    models = load_registry(path)
    models[model] = entry
    atomic_write_text(Path(path), REGISTRY_HEADER + yaml.safe_dump({"models": dict(sorted(models.items()))},
                                                                   sort_keys=False, width=110))
