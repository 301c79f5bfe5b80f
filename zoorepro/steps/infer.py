"""Run a compiled model over the per-sample input folders: the document's ais_bench inference step
(`--input dir1,dir2,... --output outputs --outfmt NPY`). Outputs `{i}_{k}.npy` into --out-dir.

Usage: python -m zoorepro.steps.infer --target cpu --model M --batch-size 1 --inputs DIR [DIR ...]
           --out-dir OUT [--limit N]
"""
import argparse
import json
import shutil
import tempfile
from pathlib import Path

from zoorepro import lineage
from zoorepro.backends import get_backend
from zoorepro.cli import run_step
from zoorepro.config import load_params
from zoorepro.fsutil import atomic_write_text


def first_samples(input_dirs: list[Path], limit: int, staging: Path) -> list[Path]:
    """Folders holding only the first `limit` samples of each input (links, not copies)."""
    from zoorepro.backends.sample_layout import list_samples

    rows = list_samples(input_dirs)[:limit]
    dirs = []
    for k, folder in enumerate(input_dirs):
        dest = staging / f"{k}_{folder.name}"
        dest.mkdir()
        for row in rows:
            (dest / row[k].name).symlink_to(row[k].resolve())
        dirs.append(dest)
    return dirs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", required=True)
    ap.add_argument("--model", required=True, type=Path)
    ap.add_argument("--inputs", required=True, nargs="+", type=Path, help="one folder per model input, in order")
    ap.add_argument("--batch-size", required=True, type=int)
    ap.add_argument("--limit", type=int, default=None, help="only the first N samples")
    ap.add_argument("--out-dir", required=True, type=Path)
    args = ap.parse_args()
    backend = get_backend(args.target, load_params())
    backend.check()
    staging = Path(tempfile.mkdtemp(prefix=".infer-inputs-"))
    try:
        inputs = first_samples(args.inputs, args.limit, staging) if args.limit else args.inputs
        result = backend.infer(args.model, inputs, args.out_dir, args.batch_size)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    lineage.record(args.out_dir, [args.model, *args.inputs])
    atomic_write_text(args.out_dir.parent / f"{args.out_dir.name}.summary.json",
                      json.dumps({"n_samples": result.n_samples, **result.summary}, indent=2, default=str) + "\n")
    print(f"inferred {result.n_samples} samples into {args.out_dir}")
    return 0


if __name__ == "__main__":
    run_step(main)
