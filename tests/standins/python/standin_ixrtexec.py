"""Test stand-in for IxRT's `ixrtexec` (IXUCA SDK 4.2.0): the flags the VideoBERT document uses and
the two result lines it prints, but the "engine" is the ONNX model wrapped in a stand-in header and
it runs with onnxruntime on the CPU (in fp32, whatever precision the engine records).

What it mirrors from ixrtexec 4.2.0 (iluvatar-corex-ixrt `ixrt/cli`, release 4.2.0):
- build mode (`--onnx`): a model with a dynamic input needs all of --min_shape/--opt_shape/
  --max_shape, naming model inputs with the right rank; a fully static model refuses them;
- after a build, and in load mode (`--load_engine`), it runs the engine: `--warmUp` untimed
  executions (a count, despite the tool's help text), then `--iterations` executions timed as one
  block; dynamic inputs take their `--shapes` entry (or the profile's min shape), static ones ignore it;
- inputs are generated as ixrtexec does: uniform [0, 1) floats, all-ones integers;
- `fps = iterations * bsz / elapsed` where bsz is the first dimension of the *last* input binding,
  and `Throughput = iterations / elapsed`, printed as `fps: {fps} with batchsize {bsz}` and
  `Throughput: {throughput} qps`.
`--version` (which ixrtexec 4.2.0 does not have) prints a line saying this is a stand-in.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnx.helper
import onnxruntime

HEADER = b"ZOOREPRO-STANDIN-ENGINE\n"
MARK = "ZOOREPRO STAND-IN"
IMITATES = "IXUCA SDK 4.2.0 ixrtexec (iluvatar-corex-ixrt release 4.2.0 @6d81ff77f084, ixrt/cli/ixrtexec.py)"
VERSION_LINE = f"ixrtexec {MARK} 0.1 (onnxruntime {onnxruntime.__version__} on the CPU; not IxRT; imitates {IMITATES})"
DEFAULT_PLUGINS = ("ixrt_plugin",)
PROFILE_FLAGS = ("min_shape", "opt_shape", "max_shape")


class StandinError(Exception):
    """A failure ixrtexec would end with (its own assertion or parse error): message, exit 1."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ixrtexec", description=f"{MARK} for ixrtexec (tests only; not IxRT)")
    parser.add_argument("--onnx")
    parser.add_argument("--shapes")
    for flag in PROFILE_FLAGS:
        parser.add_argument(f"--{flag}", default="")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--warmUp", type=int, default=10)
    parser.add_argument("--precision", choices=["int8", "fp16"], default="fp16")
    parser.add_argument("--save_engine")
    parser.add_argument("--load_engine")
    parser.add_argument("--log_level", choices=["verbose", "info", "warning", "error", "internal_error"], default="warning")
    parser.add_argument("--plugins", nargs="+", default=[])
    parser.add_argument("--version", action="store_true")
    return parser.parse_args(argv)


def parse_shape_map(text: str) -> dict[str, list[int]]:
    """`name:AxBxC,name2:D` (the name may itself contain colons: the last one separates)."""
    shapes = {}
    for entry in filter(None, (e.strip() for e in text.split(","))):
        name, sep, dims = entry.rpartition(":")
        try:
            if not sep or not name:
                raise ValueError(entry)
            shapes[name] = [int(d) for d in dims.split("x")]
        except ValueError:
            raise StandinError(f"cannot parse shape entry {entry!r} (expected name:AxBxC)") from None
    return shapes


def model_inputs(model: onnx.ModelProto) -> list[dict]:
    """Graph inputs that are not initializers: name, dims (-1 where symbolic or unknown), dtype."""
    initializers = {t.name for t in model.graph.initializer}
    inputs = []
    for value in model.graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
        if not dims:
            raise StandinError(f"input shape not provided : {value.name}")
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name
        inputs.append({"name": value.name, "dims": dims, "dtype": dtype})
    if not inputs:
        raise StandinError("the model has no inputs")
    return inputs


def _fits(dims: list[int], shape: list[int]) -> bool:
    """Same rank, and every static dim of the model equal to the requested one."""
    return len(dims) == len(shape) and all(d == -1 or d == s for d, s in zip(dims, shape))


def build_profile(inputs: list[dict], args: argparse.Namespace) -> dict[str, dict[str, list[int]]]:
    """ixrtexec's rules for the optimization profile, plus the checks a TensorRT-like builder makes
    (static dims equal, min <= opt <= max)."""
    dynamic = [i["name"] for i in inputs if -1 in i["dims"]]
    given = [getattr(args, flag) for flag in PROFILE_FLAGS]
    if not dynamic:
        if all(given):
            raise StandinError("Static model does not take explicit shapes; do not pass --min_shape,--opt_shape,--max_shape.")
        return {}
    if not all(given):
        raise StandinError("If you use dynamic shape input, please specify all --min_shape,--opt_shape,--max_shape")
    by_name = {i["name"]: i for i in inputs}
    profile: dict[str, dict[str, list[int]]] = {}
    for flag, text in zip(PROFILE_FLAGS, given):
        for name, shape in parse_shape_map(text).items():
            if name not in by_name:
                raise StandinError(f"Cannot find input tensor with name '{name}' in the network inputs!")
            if not _fits(by_name[name]["dims"], shape):
                raise StandinError(f"--{flag} {name}:{shape} does not fit the model's input shape {by_name[name]['dims']}")
            profile.setdefault(name, {})[flag] = shape
    for name in dynamic:
        if set(profile.get(name, {})) != set(PROFILE_FLAGS):
            raise StandinError(f"{name} is dynamic shape input, please specify all --min_shape,--opt_shape,--max_shape")
    for name, shapes in profile.items():
        lo, opt, hi = (np.array(shapes[flag]) for flag in PROFILE_FLAGS)
        if not (np.all(lo <= opt) and np.all(opt <= hi)):
            raise StandinError(f"profile for {name} needs min <= opt <= max, got {shapes}")
    return profile


def load_plugins(plugins: list[str]) -> None:
    """`ixrt_plugin` names the SDK's plugin library (nothing to load here); any other entry must be
    a library file, as ixrtexec's CDLL(path) requires."""
    for plugin in plugins:
        print(f"Load plugin: {plugin}")
        if plugin not in DEFAULT_PLUGINS and not Path(plugin).is_file():
            raise StandinError(f"{plugin}: cannot open shared object file: No such file or directory")


def build(args: argparse.Namespace) -> tuple[dict, bytes]:
    """Parse and check the ONNX as the builder would, and describe it in the engine's meta line."""
    if args.precision != "fp16":
        raise StandinError(f"--precision {args.precision}: the stand-in builds fp16 engines only")
    try:
        onnx_bytes = Path(args.onnx).read_bytes()
        model = onnx.load_from_string(onnx_bytes)
        onnx.checker.check_model(model)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a build failure
        raise StandinError(f"Failed to parse model {args.onnx}: {exc}") from None
    inputs = model_inputs(model)
    meta = {
        "standin": f"{MARK}: ONNX run by onnxruntime on the CPU in fp32, not an IxRT engine",
        "precision": args.precision,
        "inputs": inputs,
        "outputs": [o.name for o in model.graph.output],
        "profile": build_profile(inputs, args),
        "plugins": args.plugins,
        "onnx_sha256": hashlib.sha256(onnx_bytes).hexdigest(),
    }
    return meta, onnx_bytes


def write_engine(path: Path, meta: dict, onnx_bytes: bytes) -> None:
    path.write_bytes(HEADER + json.dumps(meta, separators=(",", ":")).encode() + b"\n" + onnx_bytes)


def read_engine(path: Path) -> tuple[dict, bytes]:
    """Split a stand-in engine into (meta, ONNX bytes); any other file is refused."""
    if not path.is_file():
        raise StandinError(f"engine {path} does not exist")
    data = path.read_bytes()
    if not data.startswith(HEADER):
        raise StandinError(f"{path} is not a stand-in engine (only files written by the stand-in ixrtexec run here)")
    meta_line, sep, onnx_bytes = data[len(HEADER):].partition(b"\n")
    if not sep:
        raise StandinError(f"{path} is truncated")
    return json.loads(meta_line), onnx_bytes


def inference_shapes(meta: dict, shapes_text: str | None) -> dict[str, list[int]]:
    """Each input's run shape: dynamic inputs from --shapes (within the profile) or the profile's
    min shape, static inputs their own; names --shapes does not match are ignored, as ixrtexec does."""
    requested = parse_shape_map(shapes_text or "")
    shapes = {}
    for inp in meta["inputs"]:
        name, dims = inp["name"], inp["dims"]
        if -1 not in dims:
            if name in requested:
                print(f"Static dimensions for input: {name}, no need to provide shapes. The --shape parameter will be ignored.")
            shape = dims
        elif name in requested:
            shape = requested[name]
            lo, hi = meta["profile"][name]["min_shape"], meta["profile"][name]["max_shape"]
            if len(shape) != len(lo) or not all(a <= s <= b for a, s, b in zip(lo, shape, hi)):
                raise StandinError(f"--shapes {name}:{shape} is outside the engine's profile [{lo}, {hi}]")
        else:
            shape = meta["profile"][name]["min_shape"]
            print(f"Dynamic dimensions required for input: {name}, but no shapes were provided. "
                  f"Automatically overriding shape to: {'x'.join(map(str, shape))}")
        print(f"Input inference shape: {name}={'x'.join(map(str, shape))}")
        shapes[name] = list(shape)
    return shapes


def generate_inputs(meta: dict, shapes: dict[str, list[int]]) -> dict[str, np.ndarray]:
    """ixrtexec's generated inputs: uniform [0, 1) for floats, ones for integers and booleans."""
    rng = np.random.default_rng()
    feeds = {}
    for inp in meta["inputs"]:
        dtype = np.dtype(inp["dtype"])
        shape = shapes[inp["name"]]
        feeds[inp["name"]] = rng.random(shape).astype(dtype) if dtype.kind == "f" else np.ones(shape, dtype)
    return feeds


def run(meta: dict, onnx_bytes: bytes, args: argparse.Namespace) -> None:
    """Warm-up, then one timed block of iterations; print ixrtexec's two result lines."""
    if args.iterations <= 0:
        raise StandinError(f"--iterations must be positive, got {args.iterations}")
    shapes = inference_shapes(meta, args.shapes)
    feeds = generate_inputs(meta, shapes)
    session = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    for _ in range(max(args.warmUp, 0)):
        session.run(None, feeds)
    start = time.time()
    for _ in range(args.iterations):
        session.run(None, feeds)
    elapsed = time.time() - start
    bsz = shapes[meta["inputs"][-1]["name"]][0]
    print(f"fps: {args.iterations * bsz / elapsed} with batchsize {bsz}")
    print(f"Throughput: {args.iterations / elapsed} qps")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.version:
        print(VERSION_LINE)
        return 0
    print(f"[W] {MARK}: this is not IxRT; the model runs with onnxruntime on the CPU; it imitates {IMITATES}",
          flush=True)
    try:
        load_plugins(args.plugins)
        if args.load_engine:
            meta, onnx_bytes = read_engine(Path(args.load_engine))
        elif args.onnx:
            meta, onnx_bytes = build(args)
            if args.save_engine:
                write_engine(Path(args.save_engine), meta, onnx_bytes)
        else:
            raise StandinError("give --onnx to build an engine or --load_engine to run one")
        run(meta, onnx_bytes, args)
    except StandinError as exc:
        print(f"[E] {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
