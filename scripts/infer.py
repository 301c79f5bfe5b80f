#!/usr/bin/env python
"""Run a compiled model over the per-sample input folders: the document's ais_bench inference step
(`--input dir1,dir2,... --output outputs --outfmt NPY`). Outputs `{i}_{k}.npy` into --out-dir."""
import argparse
import json
from pathlib import Path

import _bootstrap  # noqa: F401
from zoorepro.backends import get_backend
from zoorepro.cli import run_step
from zoorepro.config import load_params


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--target", required=True)
    ap.add_argument("--model", required=True, type=Path)
    ap.add_argument("--inputs", required=True, nargs="+", type=Path, help="one folder per model input, in order")
    ap.add_argument("--batch-size", required=True, type=int)
    ap.add_argument("--out-dir", required=True, type=Path)
    args = ap.parse_args()
    backend = get_backend(args.target, load_params())
    backend.check()
    result = backend.infer(args.model, args.inputs, args.out_dir, args.batch_size)
    (args.out_dir.parent / f"{args.out_dir.name}.summary.json").write_text(
        json.dumps({"n_samples": result.n_samples, **result.summary}, indent=2, default=str) + "\n")
    print(f"inferred {result.n_samples} samples into {args.out_dir}")
    return 0


if __name__ == "__main__":
    run_step(main)
