"""Compare a target's raw outputs with a reference's: max abs diff and minimum cosine similarity
per output, plus any named harness statistics (e.g. ByteMLPerf general_perf's numeric check).
Writes measurement records (table rows with no claim) that name both sides as their raw files.

Either side is a folder in ais_bench's layout (`{sample}_{k}.npy`, k = output index; the reference's
samples are the ones compared) or one `.npy` array holding a single output. Each output is viewed
as rows of its last axis: the cosine is taken per row (per sample, per image), its minimum reported.

Usage: python -m zoorepro.steps.compare --reference REF --outputs OUT --output-names logits probs
           [--statistics general_perf] --batch-size 1 --precision fp16 --measurements m.json
"""
from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from zoorepro.cli import run_step
from zoorepro.errors import ZooreproError
from zoorepro.measurements import Measurement, print_measurements, write_measurements
from zoorepro.readers import load_npy

_OUTPUT_FILE = re.compile(r"^(?P<sample>.+)_(?P<k>\d+)\.npy$")


def read_side(path: Path, n_outputs: int, samples: list[str] | None = None) -> tuple[list[np.ndarray], list[str]]:
    """Per output, all compared values as one array of rows [n_rows, last_dim]; and the sample names
    (None: a single array file). `samples` restricts a folder to the reference's samples."""
    path = Path(path)
    if path.is_file():
        if n_outputs != 1:
            raise ZooreproError(f"{path}: one array holds one output, {n_outputs} output names given")
        array = load_npy(path)
        return [array.reshape(-1, array.shape[-1])], []
    if not path.is_dir():
        raise ZooreproError(f"{path}: no such output file or folder")
    found: dict[str, set[int]] = {}
    for p in path.iterdir():
        m = _OUTPUT_FILE.match(p.name)
        if m:
            found.setdefault(m["sample"], set()).add(int(m["k"]))
    names = samples if samples is not None else sorted(found, key=lambda s: (len(s), s))
    if not names:
        raise ZooreproError(f"{path} holds no {{sample}}_{{k}}.npy outputs")
    per_output = []
    for k in range(n_outputs):
        rows = []
        for name in names:
            file = path / f"{name}_{k}.npy"
            if not file.is_file():
                raise ZooreproError(f"missing output {file}")
            a = load_npy(file)
            rows.append(a.reshape(-1, a.shape[-1]))
        per_output.append(np.concatenate(rows))
    return per_output, list(names)


def max_abs_and_min_cosine(ref: np.ndarray, got: np.ndarray) -> tuple[float, float]:
    if ref.shape != got.shape:
        raise ZooreproError(f"output shapes differ: reference {ref.shape}, compared {got.shape}")
    ref, got = ref.astype(np.float64), got.astype(np.float64)
    max_abs = float(np.max(np.abs(ref - got)))
    min_cos = 1.0
    for r, g in zip(ref, got):
        denom = np.linalg.norm(r) * np.linalg.norm(g)
        min_cos = min(min_cos, float(r @ g / denom) if denom else float(np.array_equal(r, g)))
    return max_abs, min_cos


def _general_perf(ref: np.ndarray, got: np.ndarray) -> list[tuple[str, float, str, str]]:
    """ByteMLPerf general_perf's numeric check (Mean/Std/Max Diff, Max/Mean Rel-Diff)."""
    from zoorepro.backends.ixrt.bytemlperf import numeric_diff

    diff = numeric_diff([ref], [got])
    return [(f"numeric_{k.lower().replace(' ', '_').replace('-', '_')}", v, "rel" if "Rel" in k else "abs",
             f"general_perf {k}") for k, v in diff.items()]


STATISTICS: dict[str, Callable[[np.ndarray, np.ndarray], list[tuple[str, float, str, str]]]] = {
    "general_perf": _general_perf,
}


def compare(reference: Path, outputs: Path, output_names: list[str], statistics: list[str], batch_size: int | None,
            precision: str, label: str, rows: str = "rows") -> list[Measurement]:
    """`rows`: what one row of a single-array output is (e.g. images), for the notes."""
    ref_arrays, samples = read_side(reference, len(output_names))
    got_arrays, _ = read_side(outputs, len(output_names), samples or None)
    what = f"{len(samples)} samples" if samples else f"{len(ref_arrays[0])} {rows}"
    several = len(output_names) > 1
    common = {"kind": "parity", "batch_size": batch_size, "precision": precision, "raw": (str(reference), str(outputs))}
    records = []
    for name, ref, got in zip(output_names, ref_arrays, got_arrays):
        max_abs, min_cos = max_abs_and_min_cosine(ref, got)
        for stat in statistics:
            records += [Measurement(f"{metric}_{name}" if several else metric, value=value, unit=unit,
                                    note=f"{note} vs {label}", **common)
                        for metric, value, unit, note in STATISTICS[stat](ref, got)]
        records.append(Measurement(f"parity_max_abs_{name}", value=max_abs, unit="abs",
                                   note=f"vs {label}, {what}" if samples else f"vs {label}", **common))
        records.append(Measurement(f"parity_min_cosine_{name}", value=min_cos, unit="cosine",
                                   note=f"minimum over {what}", **common))
    return records


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reference", required=True, type=Path, help="the reference's output folder or .npy")
    ap.add_argument("--outputs", required=True, type=Path, help="the compared target's output folder or .npy")
    ap.add_argument("--output-names", nargs="+", required=True, help="the model's outputs, in output-index order")
    ap.add_argument("--statistics", nargs="*", default=[], choices=sorted(STATISTICS),
                    help="harness statistics to add to max abs diff and min cosine")
    ap.add_argument("--label", default=None, help="what the reference is, for the notes (default: its path)")
    ap.add_argument("--rows", default="rows", help="what one row of a single-array output is, for the notes")
    ap.add_argument("--batch-size", type=int, default=None, help="the batch size the compared outputs were run at")
    ap.add_argument("--precision", default="")
    ap.add_argument("--measurements", required=True, type=Path)
    args = ap.parse_args()
    records = compare(args.reference, args.outputs, args.output_names, args.statistics, args.batch_size,
                      args.precision, args.label or str(args.reference), args.rows)
    print_measurements(write_measurements(args.measurements, records))
    return 0


if __name__ == "__main__":
    run_step(main)
