#!/usr/bin/env python
"""Numeric parity: a target's outputs against onnxruntime-CPU golden outputs of the exported
(un-simplified, un-fixed) ONNX on the same inputs. Reports max abs diff and the minimum cosine
similarity over samples, per output, as measurement records (table rows with no claim)."""
import argparse
import json
from pathlib import Path

import numpy as np

import _bootstrap  # noqa: F401
from zoorepro.backends.onnxruntime import OnnxRuntimeBackend
from zoorepro.cli import run_step
from zoorepro.backends.sample_io import list_samples
from zoorepro.errors import ZooreproError


def compare(golden: list[np.ndarray], got: list[np.ndarray]) -> tuple[float, float]:
    max_abs, min_cos = 0.0, 1.0
    for g, o in zip(golden, got):
        g, o = g.astype(np.float64).ravel(), o.astype(np.float64).ravel()
        max_abs = max(max_abs, float(np.max(np.abs(g - o))))
        denom = np.linalg.norm(g) * np.linalg.norm(o)
        min_cos = min(min_cos, float(g @ o / denom) if denom else float(np.array_equal(g, o)))
    return max_abs, min_cos


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--golden-model", required=True, type=Path)
    ap.add_argument("--inputs", required=True, nargs="+", type=Path)
    ap.add_argument("--outputs", required=True, type=Path, help="the target's {i}_{k}.npy folder")
    ap.add_argument("--output-names", nargs="+", default=["logits", "probs"])
    ap.add_argument("--limit", type=int, default=64, help="compare the first N samples")
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--precision", default="")
    ap.add_argument("--measurements", required=True, type=Path)
    args = ap.parse_args()
    samples = list_samples(args.inputs)[: args.limit]
    golden = OnnxRuntimeBackend("cpu", {"provider": "CPUExecutionProvider"}).session(args.golden_model)
    names = [i.name for i in golden.get_inputs()]
    records = []
    per_output = {k: ([], []) for k in range(len(args.output_names))}
    for row in samples:
        stem = row[0].name.split(".")[0]
        outs = golden.run(None, {n: np.load(p) for n, p in zip(names, row)})
        for k in per_output:
            path = args.outputs / f"{stem}_{k}.npy"
            if not path.exists():
                raise ZooreproError(f"missing target output {path}")
            per_output[k][0].append(outs[k])
            per_output[k][1].append(np.load(path))
    for k, (g, o) in per_output.items():
        max_abs, min_cos = compare(g, o)
        name = args.output_names[k]
        common = {"kind": "parity", "batch_size": args.batch_size, "precision": args.precision,
                  "raw": [str(args.outputs)]}
        records.append({"metric": f"parity_max_abs_{name}", "value": max_abs, "unit": "abs",
                        "note": f"vs onnxruntime-CPU golden of the exported ONNX, {len(samples)} samples", **common})
        records.append({"metric": f"parity_min_cosine_{name}", "value": min_cos, "unit": "cosine",
                        "note": f"minimum over {len(samples)} samples", **common})
    args.measurements.write_text(json.dumps(records, indent=2) + "\n")
    for r in records:
        print(f"{r['metric']}: {r['value']:.3g}")
    return 0


if __name__ == "__main__":
    run_step(main)
