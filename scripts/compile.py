#!/usr/bin/env python
"""Compile a static ONNX file for a target: the document's `atc` step on Ascend targets
(`atc --framework=5 ... --soc_version=...`), a load-and-place step on onnxruntime targets.
Also writes the toolchain versions (provenance; `standin: true` for test stand-ins)."""
import argparse
import json
from pathlib import Path

import _bootstrap  # noqa: F401
from zoorepro.backends import get_backend
from zoorepro.cli import run_step
from zoorepro.config import load_params
from zoorepro.onnxsim_step import check_input_shapes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--target", required=True)
    ap.add_argument("--onnx", required=True, type=Path)
    ap.add_argument("--batch-size", required=True, type=int)
    ap.add_argument("--input-shape", nargs="+", default=[], help='"name:d0,d1,..." the config expects')
    ap.add_argument("--out", required=True, type=Path, help="where the compiled model goes (.om / .onnx)")
    ap.add_argument("--versions", required=True, type=Path)
    args = ap.parse_args()
    backend = get_backend(args.target, load_params())
    backend.check()
    if args.input_shape:
        check_input_shapes(args.onnx, {k: [int(d) for d in v.split(",")]
                                       for k, v in (s.split(":") for s in args.input_shape)})
    artifact = backend.compile(args.onnx, args.out.parent, args.batch_size)
    if artifact.resolve() != args.out.resolve():
        artifact.replace(args.out)  # e.g. ATC's `_linux_<arch>` suffix
        artifact = args.out
    versions = {"backend": backend.name, "target": args.target, **backend.versions()}
    args.versions.write_text(json.dumps(versions, indent=2, sort_keys=True) + "\n")
    print(f"compiled {artifact}")
    return 0


if __name__ == "__main__":
    run_step(main)
