"""ByteMLPerf general_perf semantics, shared by the portable VideoBERT steps and the IxRT backend.

The VideoBERT document measures accuracy with ByteMLPerf's `perf_engine.py` and performance with
`ixrtexec`; both print or write numbers in formats of their own. This module holds the one copy of
those formats and formulas in this project, so a number computed on the portable targets (cpu,
cuda) means exactly what the same-named number in a vendor report means:

- the workload JSON (`general_perf/workloads/<task>.json`),
- the benchmark figures (`AVG Latency`, `P99 Latency`, `QPS`: rounded as general_perf rounds them),
- the numeric check against the CPU reference (`Mean Diff` ... `Mean Rel-Diff`, general_perf's
  `draw_all_diff` without its plot),
- the report file `general_perf/reports/<HW>/<task>/result-<precision>.json`,
- the two lines `ixrtexec` prints after timing an engine.
"""
from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path

import numpy as np

from zoorepro.errors import ZooreproError

WORKLOAD_BOOL_KEYS = ("test_perf", "test_accuracy", "test_numeric", "compile_only")
WORKLOAD_INT_KEYS = ("clients", "iterations")
WORKLOAD_KEYS = ("model", *WORKLOAD_BOOL_KEYS, *WORKLOAD_INT_KEYS, "batch_sizes", "data_percent")
DIFF_KEYS = ("Mean Diff", "Std Diff", "Max Diff", "Max Rel-Diff", "Mean Rel-Diff")
PERF_KEYS = ("BS", "QPS", "AVG Latency", "P99 Latency")
DIFF_DECIMALS = 5
LATENCY_DECIMALS = 2

_FPS_LINE = re.compile(r"^fps: (\S+) with batchsize (\d+)\s*$", re.MULTILINE)
_QPS_LINE = re.compile(r"^Throughput: (\S+) qps\s*$", re.MULTILINE)


def _load_json_object(path: Path, what: str) -> dict:
    """A JSON file that must hold an object; unreadable or malformed files name themselves."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ZooreproError(f"cannot read {what} {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ZooreproError(f"{what} {path} must hold a JSON object, got {type(data).__name__}")
    return data


def _is_int(value: object) -> bool:
    """JSON booleans are Python ints; a count or batch size must not be one."""
    return isinstance(value, int) and not isinstance(value, bool)


def load_workload(path: Path) -> dict:
    """Read a general_perf workload and refuse one perf_engine would misread: every key it uses
    present with the type it assumes (batch_sizes[0] is the accuracy batch size, so the list must
    not be empty; data_percent 0 means "all" to general_perf, as 100 does)."""
    workload = _load_json_object(path, "workload")
    missing = [key for key in WORKLOAD_KEYS if key not in workload]
    if missing:
        raise ZooreproError(f"workload {path} lacks {', '.join(missing)}")
    problems = []
    if not isinstance(workload["model"], str) or not workload["model"]:
        problems.append(f"model must be a non-empty string, got {workload['model']!r}")
    problems += [f"{key} must be true or false" for key in WORKLOAD_BOOL_KEYS if not isinstance(workload[key], bool)]
    problems += [f"{key} must be a positive integer" for key in WORKLOAD_INT_KEYS
                 if not (_is_int(workload[key]) and workload[key] > 0)]
    sizes = workload["batch_sizes"]
    if not isinstance(sizes, list) or not sizes or not all(_is_int(b) and b > 0 for b in sizes):
        problems.append(f"batch_sizes must be a non-empty list of positive integers, got {sizes!r}")
    percent = workload["data_percent"]
    if isinstance(percent, bool) or not isinstance(percent, (int, float)) or not 0 <= percent <= 100:
        problems.append(f"data_percent must be a number from 0 to 100, got {percent!r}")
    if problems:
        raise ZooreproError(f"workload {path}: {'; '.join(problems)}")
    return workload


def perf_stats(latencies_s: list[float], batch_size: int) -> dict:
    """general_perf's benchmark figures from per-call latencies in seconds, with its rounding:
    `AVG Latency` = mean in ms rounded to 2 decimals, `P99 Latency` = the sorted latency at index
    int(n*0.99) in ms rounded to 2 decimals, `QPS` = int(1000*bs/AVG Latency) computed from the
    *rounded* average (so QPS is samples/s, truncated). The unrounded `samples_per_s`,
    `batches_per_s` and `mean_ms` are ours, for tables that must not inherit that rounding."""
    if not latencies_s:
        raise ZooreproError("perf_stats needs at least one latency")
    if batch_size <= 0:
        raise ZooreproError(f"batch size must be positive, got {batch_size}")
    total = math.fsum(latencies_s)
    avg = round(total / len(latencies_s) * 1000, LATENCY_DECIMALS)
    if avg <= 0:
        raise ZooreproError(f"mean latency {total / len(latencies_s)} s rounds to {avg} ms: general_perf's QPS is undefined")
    tail = round(sorted(latencies_s)[int(len(latencies_s) * 0.99)] * 1000, LATENCY_DECIMALS)
    return {
        "BS": batch_size,
        "QPS": int(1000.0 * batch_size / avg),
        "AVG Latency": avg,
        "P99 Latency": tail,
        "mean_ms": total / len(latencies_s) * 1000,
        "samples_per_s": batch_size * len(latencies_s) / total,
        "batches_per_s": len(latencies_s) / total,
    }


WARMUP = 30  # general_perf's runtime backends warm up with 30 predicts


def benchmark(sess, text: np.ndarray, batch_size: int, iterations: int, seed: int = 0) -> list[float]:
    """general_perf's benchmark loop on an onnxruntime session: seconds per predict on fake
    inputs (a seeded random image batch and the text input) after WARMUP untimed predicts; numpy
    in and out, so host copies are included as in general_perf's QPS."""
    rng = np.random.default_rng(seed)
    feeds = {"image": rng.random((batch_size, 3, 224, 224), dtype=np.float32), "text": text}
    for _ in range(WARMUP):
        sess.run(None, feeds)
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        sess.run(None, feeds)
        times.append(time.perf_counter() - start)
    return times


def _flatten(arrays: list[np.ndarray]) -> np.ndarray:
    """All batches as one flat copy, as general_perf reads its saved list of batch outputs back."""
    return np.concatenate([np.asarray(a).ravel() for a in arrays]) if arrays else np.empty(0)


def numeric_diff(cpu: list[np.ndarray], other: list[np.ndarray]) -> dict:
    """general_perf's numeric check of a backend's outputs against the CPU reference outputs
    (its `draw_all_diff`, without the histogram): NaN and Inf become 0 on both sides;
    diff = cpu - other; the relative diff divides by cpu with zeros replaced by 1 (NaN from 0/0
    cannot occur then, nan_to_num guards the rest); then mean, population std and max of |diff|,
    max and mean of |relative diff|, each rounded to 5 decimals."""
    if len(cpu) != len(other):
        raise ZooreproError(f"numeric diff needs as many batches on both sides, got {len(cpu)} and {len(other)}")
    for i, (a, b) in enumerate(zip(cpu, other)):
        if np.shape(a) != np.shape(b):
            raise ZooreproError(f"batch {i}: CPU output shape {np.shape(a)} differs from {np.shape(b)}")
    ref, cur = _flatten(cpu), _flatten(other)
    if ref.size == 0:
        raise ZooreproError("numeric diff needs at least one output value")
    ref[~np.isfinite(ref)] = 0.0
    cur[~np.isfinite(cur)] = 0.0
    diff = np.abs(ref - cur)
    rel = np.abs(np.nan_to_num((ref - cur) / np.where(ref == 0, 1, ref)))
    values = (diff.mean(), diff.std(), diff.max(), rel.max(), rel.mean())
    return {key: round(float(v), DIFF_DECIMALS) for key, v in zip(DIFF_KEYS, values)}


def report_path(bytemlperf_root: Path, hardware: str, task: str, precision: str) -> Path:
    """Where perf_engine writes its report: `general_perf/reports/<HW>/<task>/result-<prec>.json`
    under byte_infer_perf (the precision is the backend's compile precision, lower-cased)."""
    return Path(bytemlperf_root) / "general_perf" / "reports" / hardware / task / f"result-{precision.lower()}.json"


def read_report(path: Path) -> dict:
    """A perf_engine report, checked for the parts this project reads: `Model`, an `Accuracy`
    object when present, and `Performance` entries with BS, QPS and both latencies."""
    report = _load_json_object(path, "ByteMLPerf report")
    if "Model" not in report:
        raise ZooreproError(f"ByteMLPerf report {path} has no Model key")
    if "Accuracy" in report and not isinstance(report["Accuracy"], dict):
        raise ZooreproError(f"ByteMLPerf report {path}: Accuracy must be an object")
    performance = report.get("Performance", [])
    if not isinstance(performance, list):
        raise ZooreproError(f"ByteMLPerf report {path}: Performance must be a list")
    for entry in performance:
        missing = [key for key in PERF_KEYS if not isinstance(entry, dict) or key not in entry]
        if missing:
            raise ZooreproError(f"ByteMLPerf report {path}: a Performance entry lacks {', '.join(missing)}")
    return report


def accuracy_summary(report: dict) -> dict:
    """The numbers a report holds for our tables: Top-1 (a fraction, as general_perf computes it),
    the data percent it ran on, whichever numeric diffs it has (none when the CPU reference was
    missing) and the performance entries as written."""
    accuracy = report.get("Accuracy")
    if not isinstance(accuracy, dict) or "Top-1" not in accuracy:
        raise ZooreproError(f"ByteMLPerf report for {report.get('Model')} has no Accuracy Top-1 (was test_accuracy false?)")
    return {
        "top1": float(accuracy["Top-1"]),
        "data_percent": accuracy.get("Data Percent"),
        "diff": {key: accuracy[key] for key in DIFF_KEYS if key in accuracy},
        "performance": list(report.get("Performance", [])),
    }


def _single_match(pattern: re.Pattern[str], stdout: str, line: str) -> re.Match[str]:
    """Exactly one such line: none means ixrtexec did not finish timing (or printed a profile
    instead), several mean two runs' output got mixed, and either way no number is trustworthy."""
    matches = list(pattern.finditer(stdout))
    if len(matches) != 1:
        found = "no" if not matches else f"{len(matches)}"
        raise ZooreproError(f"ixrtexec output has {found} `{line}` line(s); expected exactly one:\n{stdout[-2000:]}")
    return matches[0]


def _positive_float(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ZooreproError(f"ixrtexec printed a non-number {what}: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ZooreproError(f"ixrtexec printed {what} {text}, not a positive finite number")
    return value


def parse_ixrtexec(stdout: str) -> tuple[float, int, float]:
    """(fps, batchsize, qps) from ixrtexec's two result lines, `fps: F with batchsize B` and
    `Throughput: T qps`. ixrtexec computes F = iterations*B/elapsed and T = iterations/elapsed, so
    T counts engine executions (batches) per second; B is the first dimension of one input binding
    as ixrtexec chose it, which need not be the batch size."""
    fps = _single_match(_FPS_LINE, stdout, "fps: F with batchsize B")
    qps = _single_match(_QPS_LINE, stdout, "Throughput: T qps")
    return (_positive_float(fps.group(1), "fps"), int(fps.group(2)),
            _positive_float(qps.group(1), "throughput"))
