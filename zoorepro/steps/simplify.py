"""The document's onnxsim step with its input shapes checked before and after.

Usage: python -m zoorepro.steps.simplify in.onnx out.onnx --input-shape NAME:D0,D1,... [...] [--check-n 3]

The document runs `python -m onnxsim in.onnx out.onnx --input-shape "box_features:1,100,1024" ...`
(onnx-simplifier 0.3.6: overwrite the input shapes, simplify, 3 random-input checks, exit 1 on
"Check failed"). This module does the same through the onnxsim Python API and adds what the
pipeline needs to trust the result:

* a requested shape that names no model input, or contradicts the model's rank or one of its fixed
  dims, is refused with `ShapeMismatchError` before onnxsim runs (0.3.6 would only catch a wrong
  name; a wrong rank surfaces later as an opaque shape-inference error, or not at all);
* a failed check is an error, not a warning, and the check is this module's, not onnxsim's:
  seeded (the same inputs every run; onnxsim draws unseeded ones, so its verdict changes run to run)
  and scaled to each output (onnxsim's `allclose(rtol=1e-4, atol=1e-5)` holds every element to an
  absolute 1e-5 whatever the tensor's magnitude, so logits spread over ±100 "change" on float32
  rounding alone, 4e-5 = 3e-7 of their scale; here atol = 1e-5 × max(1, max |original output|)).
  The inputs are drawn as onnxsim draws them: uniform [0, 1) cast to each input's dtype;
* the result must have exactly the requested static input shapes, and is written atomically so a
  killed run never leaves a half-written model that a later rule would take as done.

`check_input_shapes` is the same shape test for a finished model: the compile step uses it to
refuse an ONNX whose inputs differ from the configured ones.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import onnx

from .. import lineage
from ..errors import ShapeMismatchError, ZooreproError
from ..fsutil import writing_file
from ..readers import load_onnx

Dim = int | str | None  # fixed size, symbolic name, or unknown
InputShapes = dict[str, list[int]]


def parse_input_shapes(specs: Sequence[str]) -> InputShapes:
    """`["name:1,100,1024", ...]` -> `{"name": [1, 100, 1024]}`, onnxsim's `--input-shape` form.

    Unlike onnxsim, a spec without a name is refused: with several model inputs an unnamed
    shape could never be assigned unambiguously."""
    shapes: InputShapes = {}
    for spec in specs:
        name, sep, dims = spec.rpartition(":")
        if not sep or not name:
            raise ZooreproError(f"--input-shape {spec!r}: expected NAME:D0,D1,... (e.g. box_features:1,100,1024)")
        try:
            shape = [int(d) for d in dims.split(",")]
        except ValueError:
            raise ZooreproError(f"--input-shape {spec!r}: dims must be integers") from None
        if any(d <= 0 for d in shape):
            raise ZooreproError(f"--input-shape {spec!r}: dims must be positive (a static shape)")
        if name in shapes:
            raise ZooreproError(f"--input-shape names {name!r} twice")
        shapes[name] = shape
    return shapes


def model_input_shapes(model: onnx.ModelProto) -> dict[str, list[Dim] | None]:
    """The graph's real inputs (initializers listed as inputs are weights, not inputs) with their
    declared shapes; None where the model declares no shape at all (rank unknown)."""
    weights = {init.name for init in model.graph.initializer}
    shapes: dict[str, list[Dim] | None] = {}
    for value in model.graph.input:
        if value.name in weights:
            continue
        tensor_type = value.type.tensor_type
        if not tensor_type.HasField("shape"):
            shapes[value.name] = None
            continue
        shapes[value.name] = [
            d.dim_value if d.HasField("dim_value") else (d.dim_param if d.HasField("dim_param") else None)
            for d in tensor_type.shape.dim
        ]
    return shapes


def _describe(shape: list[Dim] | None) -> str:
    if shape is None:
        return "[unknown rank]"
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _lookup(actual: dict[str, list[Dim] | None], name: str, expected: list[int]) -> list[Dim] | None:
    if name not in actual:
        raise ShapeMismatchError(
            f"input {name!r}: expected shape {expected}, but the model has no input of that name "
            f"(its inputs: {', '.join(actual) or 'none'})"
        )
    return actual[name]


def require_compatible(model: onnx.ModelProto, requested: InputShapes) -> None:
    """Refuse requested shapes that the model cannot take: unknown name, other rank, or a dim the
    model fixes to another size. Symbolic and unknown dims accept any size."""
    actual = model_input_shapes(model)
    for name, expected in requested.items():
        shape = _lookup(actual, name, expected)
        if shape is None:
            continue
        if len(shape) != len(expected):
            raise ShapeMismatchError(
                f"input {name!r}: expected shape {expected} (rank {len(expected)}), "
                f"the model's is {_describe(shape)} (rank {len(shape)})"
            )
        for axis, (have, want) in enumerate(zip(shape, expected)):
            if isinstance(have, int) and have > 0 and have != want:
                raise ShapeMismatchError(
                    f"input {name!r}: expected shape {expected}, the model's is {_describe(shape)} "
                    f"(dim {axis} is fixed to {have})"
                )


def require_static(model: onnx.ModelProto, expected: InputShapes, *, all_inputs: bool) -> None:
    """Each named input must have exactly the expected static shape. With `all_inputs`, the model
    may have no input beyond those named: an input the config does not know would be fed nothing."""
    actual = model_input_shapes(model)
    for name, want in expected.items():
        shape = _lookup(actual, name, want)
        if shape != want:
            raise ShapeMismatchError(f"input {name!r}: expected shape {want}, the model's is {_describe(shape)}")
    extra = sorted(set(actual) - set(expected)) if all_inputs else []
    if extra:
        raise ShapeMismatchError(
            "the model has inputs the expected shapes do not name: "
            + ", ".join(f"{n} {_describe(actual[n])}" for n in extra)
        )


def check_input_shapes(model_path: Path | str, expected: dict[str, list[int]]) -> None:
    """Raise ShapeMismatchError unless the model's inputs are exactly `expected` (names and static
    shapes). Reads only the graph, not external weight files."""
    require_static(load_onnx(model_path, load_external_data=False), expected, all_inputs=True)


def save_model_atomic(model: onnx.ModelProto, path: Path | str) -> None:
    """Write to a temporary file beside `path`, then rename: readers see the old file or the whole
    new one, never a partial write."""
    with writing_file(Path(path)) as tmp:
        onnx.save(model, str(tmp))


def _onnxsim_simplify():
    """Imported on use: onnxsim 0.8.1 pulls in its whole quantization toolbox at import (seconds,
    and optional dependencies such as ml_dtypes), which `check_input_shapes` does not need."""
    try:
        import onnxsim
    except ImportError as exc:
        raise ZooreproError(f"onnxsim does not import in this environment: {exc}") from exc
    return onnxsim.simplify


def simplify(in_path: Path | str, out_path: Path | str, input_shapes: InputShapes, check_n: int = 3) -> None:
    """Simplify `in_path` with the given static input shapes and write `out_path`.

    Raises ShapeMismatchError for shapes the model cannot take (before onnxsim runs, and after if
    the result's inputs are not exactly those shapes) and ZooreproError when onnxsim's check of
    the simplified model against the original on `check_n` random inputs fails."""
    model = load_onnx(in_path)
    require_compatible(model, input_shapes)
    simplified, check_ok = _onnxsim_simplify()(
        model, check_n=0, overwrite_input_shapes={k: list(v) for k, v in input_shapes.items()}
    )
    problem = None if check_ok else "onnxsim's own validation failed"
    problem = problem or check_equivalent(load_onnx(in_path), simplified, input_shapes, check_n)
    if problem:
        raise ZooreproError(f"onnxsim: Check failed: the simplified {in_path} does not match the original "
                            f"({problem}); nothing written")
    require_static(simplified, input_shapes, all_inputs=False)
    save_model_atomic(simplified, out_path)


CHECK_RTOL = 1e-4
CHECK_ATOL = 1e-5  # per unit of the output's own scale (max |original|, at least 1)


def _check_inputs(model: onnx.ModelProto, input_shapes: InputShapes, rng: np.random.Generator) -> dict:
    """onnxsim's random inputs, seeded: uniform [0, 1) cast to each input's dtype."""
    from onnx import helper

    initializers = {t.name for t in model.graph.initializer}
    feeds = {}
    for value in model.graph.input:
        if value.name in initializers:
            continue
        dtype = helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type)
        feeds[value.name] = rng.random(input_shapes[value.name]).astype(dtype)
    return feeds


def check_equivalent(original: onnx.ModelProto, simplified: onnx.ModelProto, input_shapes: InputShapes,
                     check_n: int, seed: int = 0) -> str | None:
    """Run both models on `check_n` seeded random inputs (onnxruntime, CPU); None when every output
    agrees within rtol 1e-4 and atol 1e-5 × its own scale, else what differed."""
    import onnxruntime as ort

    if check_n <= 0:
        return None
    sessions = [ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
                for m in (original, simplified)]
    names = [o.name for o in sessions[0].get_outputs()]
    rng = np.random.default_rng(seed)
    for i in range(check_n):
        print(f"Checking {i}/{check_n}...")
        feeds = _check_inputs(original, input_shapes, rng)
        ref, got = (dict(zip(names, s.run(names, feeds))) for s in sessions)
        for name in names:
            scale = max(1.0, float(np.nanmax(np.abs(ref[name]))) if ref[name].size else 1.0)
            if not np.allclose(got[name], ref[name], rtol=CHECK_RTOL, atol=CHECK_ATOL * scale, equal_nan=True):
                diff = float(np.nanmax(np.abs(got[name] - ref[name])))
                return f"output {name} differs by up to {diff:.3g} on random input {i} (scale {scale:.3g})"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """`onnxsim.py in.onnx out.onnx --input-shape NAME:D0,D1 ...`; exit 2 with a message on refusal."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input_model", type=Path)
    parser.add_argument("output_model", type=Path)
    parser.add_argument("--input-shape", nargs="+", required=True, metavar="NAME:D0,D1,...",
                        help='static input shapes, e.g. "box_features:1,100,1024" "token_ids:1,32"')
    parser.add_argument("--check-n", type=int, default=3,
                        help="random-input checks of the result against the original (default: 3, as onnxsim's)")
    args = parser.parse_args(argv)
    try:
        shapes = parse_input_shapes(args.input_shape)
        print("Simplifying...")
        simplify(args.input_model, args.output_model, shapes, check_n=args.check_n)
        lineage.record(args.output_model, [args.input_model])
    except ZooreproError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("Ok!")
    return 0


if __name__ == "__main__":
    sys.exit(main())
