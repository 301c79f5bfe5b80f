"""ByteMLPerf general_perf: its formats and formulas, and its `perf_engine.py` as a harness.

A document that measures accuracy with ByteMLPerf's `perf_engine.py` gets its numbers in
general_perf's formats. This module holds the one copy of those formats and formulas in this
project, shared by the portable steps that follow general_perf's method and by the IxRT backend
(which runs perf_engine itself, `ByteMLPerfHarness`), so a number computed on the portable targets
(cpu, cuda) means exactly what the same-named number in a vendor report means:

- the workload JSON (`general_perf/workloads/<task>.json`),
- the benchmark loop and figures (`AVG Latency`, `P99 Latency`, `QPS`: rounded as general_perf
  rounds them),
- the numeric check against the CPU reference (`Mean Diff` ... `Mean Rel-Diff`, general_perf's
  `draw_all_diff` without its plot),
- the report file `general_perf/reports/<HW>/<task>/result-<precision>.json`.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from ...errors import ZooreproError
from ...progress import progress
from ..base import Harness
from ..tools import checkout_pin, run_tool, toolchain_missing

WORKLOAD_BOOL_KEYS = ("test_perf", "test_accuracy", "test_numeric", "compile_only")
WORKLOAD_INT_KEYS = ("clients", "iterations")
WORKLOAD_KEYS = ("model", *WORKLOAD_BOOL_KEYS, *WORKLOAD_INT_KEYS, "batch_sizes", "data_percent")
DIFF_KEYS = ("Mean Diff", "Std Diff", "Max Diff", "Max Rel-Diff", "Mean Rel-Diff")
PERF_KEYS = ("BS", "QPS", "AVG Latency", "P99 Latency")
DIFF_DECIMALS = 5
LATENCY_DECIMALS = 2


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


def benchmark(sess, feeds: Mapping[str, np.ndarray], iterations: int, desc: str = "benchmark",
              warmup: int = WARMUP) -> list[float]:
    """general_perf's benchmark loop on an onnxruntime session: seconds per predict on the given
    inputs (the caller's fake batch) after `warmup` (general_perf: WARMUP) untimed predicts; numpy
    in and out, so host copies are included as in general_perf's QPS. Progress (`desc`) is counted
    outside the timer."""
    feeds = dict(feeds)
    for _ in range(warmup):
        sess.run(None, feeds)
    times = []
    for _ in progress(range(iterations), desc=desc, unit="predicts"):
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


# -- perf_engine as a harness ----------------------------------------------------------------------


def _same_json(a: Path, b: Path) -> bool:
    """Equal JSON content (formatting aside); an unreadable file is never equal."""
    try:
        return json.loads(a.read_text()) == json.loads(b.read_text())
    except (OSError, ValueError):
        return False


@dataclass(frozen=True)
class ByteMLPerfHarness(Harness):
    """ByteMLPerf's `general_perf/core/perf_engine.py` in a byte_infer_perf tree, run with one of its
    hardware backends (`--hardware_type`), as a document's accuracy steps run it. A backend that
    runs it natively hands one out from `harness("bytemlperf")`.

    The caller puts the model and the dataset where the tree's model-zoo entry expects them
    (`model_zoo(task)`, `install(src, rel)`), then `accuracy(task, workload, report_dir)` runs
    perf_engine and returns the report's numbers."""

    name: ClassVar[str] = "bytemlperf"
    root: Path | None  # byte_infer_perf (None where not configured)
    python: str  # the interpreter perf_engine runs with (the SDK's, which has the vendor runtime)
    hardware_type: str  # general_perf/backends/<hardware_type>, e.g. ILUVATAR
    precision: str  # what the hardware backend compiles to: the report is result-<precision>.json
    target: str
    pin: str  # the commit a git checkout of the tree must be at
    pin_key: str  # the setting that overrides `pin`, for messages
    howto: str  # how to get a tree with this hardware backend

    @property
    def general_perf(self) -> Path | None:
        return self.root / "general_perf" if self.root else None

    @property
    def perf_engine(self) -> Path | None:
        return self.root / "general_perf" / "core" / "perf_engine.py" if self.root else None

    def missing(self) -> str | None:
        """What the tree lacks (perf_engine.py, the hardware backend), with how to get it; None if
        nothing."""
        if self.perf_engine is None or not self.perf_engine.is_file():
            where = f" ({self.perf_engine} does not exist)" if self.perf_engine else ""
            return f"ByteMLPerf's general_perf/core/perf_engine.py is not configured{where}: {self.howto}"
        if not (self.root / "general_perf" / "backends" / self.hardware_type).is_dir():
            return f"{self.root} has no general_perf/backends/{self.hardware_type}: {self.howto}"
        return None

    def pin_status(self) -> str:
        """'verified <pin>', 'unverified (not a git checkout)', or an error for a checkout at
        another commit."""
        return checkout_pin(self.root, self.pin, self.pin_key)

    def check(self) -> None:
        missing = [m for m in (self.missing(),) if m]
        if shutil.which(self.python) is None:
            missing.append(f"the Python interpreter `{self.python}` that runs perf_engine.py is not found")
        if missing:
            raise toolchain_missing(self.target, f"ByteMLPerf with its {self.hardware_type} backend", missing)
        self.pin_status()

    def _tree(self) -> Path:
        if self.root is None:
            self.check()  # raises: nothing configured
        assert self.root is not None
        return self.root

    def model_zoo(self, task: str) -> dict:
        """The tree's `general_perf/model_zoo/<task>.json`: where perf_engine reads the model
        (`model_path`, relative to byte_infer_perf) and which dataset it loads (`dataset_name`,
        under general_perf/datasets/)."""
        zoo = self._tree() / "general_perf" / "model_zoo" / f"{task}.json"
        if not zoo.is_file():
            raise ZooreproError(f"{zoo} is missing: the ByteMLPerf tree has no model-zoo entry for {task}")
        info = _load_json_object(zoo, "ByteMLPerf model-zoo entry")
        for key in ("model_path", "dataset_name"):
            if not isinstance(info.get(key), str) or not info[key]:
                raise ZooreproError(f"{zoo} has no usable {key}: {info.get(key)!r}")
        return info

    def install(self, src: Path, rel: str | Path) -> Path:
        """Put a file or folder at `<root>/<rel>` (where the model-zoo entry expects it), as the
        document's accuracy steps copy them; nothing to do where it is already that file."""
        root = self._tree()
        dest = root / rel
        if not os.path.abspath(dest).startswith(os.path.abspath(root) + os.sep):
            raise ZooreproError(f"{rel} is not inside the ByteMLPerf tree {root}")
        if dest.exists() and os.path.samefile(src, dest):  # already linked there
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        if Path(src).is_dir():
            shutil.copytree(src, dest, dirs_exist_ok=True)
        else:
            shutil.copyfile(src, dest)
        return dest

    def outputs_dir(self, task: str) -> Path:
        """Where perf_engine leaves this hardware's report and saved outputs (`<dataset>.npy`, the
        other side of general_perf's numeric check)."""
        return self._tree() / "general_perf" / "reports" / self.hardware_type / task

    def report_path(self, task: str) -> Path:
        return report_path(self._tree(), self.hardware_type, task, self.precision)

    def _install_workload(self, task: str, workload_json: Path) -> None:
        """Put the shipped workload where perf_engine reads it (documents fetch it from a moving
        branch). An existing file with other content is someone's own workload: refused, never
        overwritten."""
        workload = load_workload(workload_json)
        if workload["model"] != task:
            raise ZooreproError(f"workload {workload_json} is for model {workload['model']!r}, not task {task!r}")
        dest = self._tree() / "general_perf" / "workloads" / f"{task}.json"
        if dest.exists():
            if not _same_json(dest, Path(workload_json)):
                raise ZooreproError(
                    f"{dest} exists with other content than {workload_json}; remove or rename it to run "
                    "the documented workload"
                )
            return
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(workload_json, dest)

    def _check_tree(self, task: str) -> None:
        """What the document copies into the ByteMLPerf tree before running perf_engine; missing
        pieces would otherwise surface as a traceback deep in perf_engine (or, for the model, as a
        silently failed optimizer call, whose exit code the hardware backend may ignore)."""
        info = self.model_zoo(task)
        general = self._tree() / "general_perf"
        needed = [self._tree() / info["model_path"], general / "datasets" / info["dataset_name"]]
        absent = [str(p) for p in needed if not p.exists()]
        if absent:
            raise ZooreproError(
                f"the ByteMLPerf tree lacks {', '.join(absent)}: copy the model and dataset there as the "
                "document's accuracy steps do"
            )

    def accuracy(self, task: str, workload_json: Path, report_dir: Path) -> dict:
        """The document's accuracy run: `python3 general_perf/core/perf_engine.py --hardware_type
        <HW> --task <task>` in byte_infer_perf (perf_engine chdirs there anyway). Numbers come from
        the report file it writes, not its console; the report is copied into report_dir, and one
        older than this run is refused. perf_engine also runs the workload's performance part,
        which lands in `performance` as written (how it times is the hardware backend's choice)."""
        self.check()
        self._install_workload(task, Path(workload_json))
        self._check_tree(task)
        report = self.report_path(task)
        before = report.stat().st_mtime_ns if report.exists() else None
        run_tool(
            [self.python, str(self.perf_engine), "--hardware_type", self.hardware_type, "--task", task],
            "perf_engine.py", cwd=self.root,
        )
        if not report.is_file() or report.stat().st_mtime_ns == before:
            raise ZooreproError(f"perf_engine.py exited 0 but did not write {report}")
        summary = accuracy_summary(read_report(report))
        report_dir = Path(report_dir)
        report_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(report, report_dir / report.name)
        return summary
