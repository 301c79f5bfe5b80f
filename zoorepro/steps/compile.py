"""Compile a static ONNX file for a target: the document's `atc --framework=5 ...` on Ascend
targets, IxRT's optimizer + `ixrtexec --save_engine` on IxRT targets, a load-and-place step on
onnxruntime targets. Also writes the toolchain versions (provenance; `standin: true` for stand-ins).

Usage: python -m zoorepro.steps.compile --target 310P3 --onnx M.onnx --batch-size 1
           [--input-shape NAME:D0,D1,... ... [--check-shapes]] [--tool-args='--FLAG=VALUE ...'] --out model.om --versions v.json
"""
import argparse
import json
import shlex
from pathlib import Path

from zoorepro import lineage
from zoorepro.backends import get_backend
from zoorepro.cli import run_step
from zoorepro.config import load_params
from zoorepro.errors import ZooreproError
from zoorepro.fsutil import atomic_write_text
from zoorepro.steps.simplify import check_input_shapes, parse_input_shapes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", required=True)
    ap.add_argument("--onnx", required=True, type=Path)
    ap.add_argument("--batch-size", required=True, type=int)
    ap.add_argument("--input-shape", nargs="+", default=[], metavar="NAME:D0,D1,...",
                    help="the static input shapes, handed to tools that need them (IxRT's --shapes)")
    ap.add_argument("--check-shapes", action="store_true",
                    help="refuse an ONNX whose inputs are not exactly --input-shape (names and static dims)")
    ap.add_argument("--tool-args", default="", metavar="'WORDS'",
                    help="a model's own flags for the backend's compile tool (atc, ixrtexec), one shell-quoted "
                         "value, e.g. --tool-args='--op_select_implmode=high_performance'")
    ap.add_argument("--out", required=True, type=Path, help="where the compiled model goes")
    ap.add_argument("--versions", required=True, type=Path)
    args = ap.parse_args()
    backend = get_backend(args.target, load_params())
    backend.check()
    shapes = parse_input_shapes(args.input_shape) if args.input_shape else None
    if args.check_shapes:
        if not shapes:
            ap.error("--check-shapes needs --input-shape")
        check_input_shapes(args.onnx, shapes)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    artifact = backend.compile(args.onnx, args.out.parent, args.batch_size, input_shapes=shapes,
                               tool_args=shlex.split(args.tool_args))
    if artifact.resolve() != args.out.resolve():
        raise ZooreproError(f"{backend.name} wrote {artifact}, the rule expects {args.out} "
                            f"(name outputs {backend.artifact_name(args.batch_size)})")
    lineage.record(artifact, [args.onnx])
    versions = {"backend": backend.name, "target": args.target, **backend.versions()}
    atomic_write_text(args.versions, json.dumps(versions, indent=2, sort_keys=True) + "\n")
    print(f"compiled {artifact}")
    return 0


if __name__ == "__main__":
    run_step(main)
