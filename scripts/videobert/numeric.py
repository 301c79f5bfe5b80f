#!/usr/bin/env python
"""general_perf's numeric check (test_numeric): a target's logits_per_image against the CPU
reference (onnxruntime CPUExecutionProvider on the fp32 ONNX, as ByteMLPerf's
calculate_cpu_diff.sh makes it), as Mean/Std/Max Diff and Max/Mean Rel-Diff, plus the max abs
diff and min cosine rows every table carries. Writes measurement records (rows with no claim)."""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from zoorepro.cli import run_step  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reference", required=True, type=Path, help="the cpu target's open_cifar.npy")
    ap.add_argument("--other", required=True, type=Path, help="this target's open_cifar.npy")
    ap.add_argument("--batch-size", required=True, type=int)
    ap.add_argument("--precision", default="")
    ap.add_argument("--measurements", required=True, type=Path)
    args = ap.parse_args()
    from zoorepro.errors import ZooreproError
    from zoorepro.fsutil import atomic_write_text
    from zoorepro.videobert.bytemlperf import numeric_diff

    ref, other = np.load(args.reference), np.load(args.other)
    if ref.shape != other.shape:
        raise ZooreproError(f"{args.other} has shape {other.shape}, the reference {ref.shape}")
    diff = numeric_diff(list(ref), list(other))
    flat_ref, flat_other = ref.reshape(-1, ref.shape[-1]).astype(np.float64), other.reshape(-1, ref.shape[-1]).astype(np.float64)
    norms = np.linalg.norm(flat_ref, axis=1) * np.linalg.norm(flat_other, axis=1)
    cosine = float(np.min(np.sum(flat_ref * flat_other, axis=1) / np.where(norms == 0, 1, norms)))
    common = {"kind": "parity", "batch_size": args.batch_size, "precision": args.precision,
              "raw": [str(args.reference), str(args.other)]}
    records = [{"metric": f"numeric_{k.lower().replace(' ', '_').replace('-', '_')}", "value": v, "unit": "abs"
                if "Rel" not in k else "rel", "note": f"general_perf {k} vs the onnxruntime-CPU reference", **common}
               for k, v in diff.items()]
    records += [{"metric": "parity_max_abs_logits_per_image", "value": float(np.max(np.abs(flat_ref - flat_other))),
                 "unit": "abs", "note": "vs the onnxruntime-CPU reference", **common},
                {"metric": "parity_min_cosine_logits_per_image", "value": cosine, "unit": "cosine",
                 "note": f"minimum over {len(flat_ref)} images", **common}]
    atomic_write_text(args.measurements, json.dumps(records, indent=2) + "\n")
    print(json.dumps(diff))
    return 0


if __name__ == "__main__":
    run_step(main)
