"""One measurement vocabulary: the record every step hands to the table, latency statistics, and
the atomic writer and reader of measurement files.

A measurement file is a JSON list of records (docs/design.md, "Measurements"). Each record names
the raw files or folders it was computed from (`raw`) and, written by `write_measurements`, the
sha256 each of them had when it was measured (`lineage`): the table hashes exactly those into its
provenance and follows their lineage records back (zoorepro/lineage.py), so a number always knows
where it came from and a table never mixes two versions of an artifact.
"""
from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from . import lineage
from .errors import ZooreproError
from .fsutil import atomic_write_text

KINDS = ("accuracy", "throughput", "latency", "parity", "training")


@dataclass(frozen=True)
class Measurement:
    """One reproduced number. `batch_size` is None where the number does not depend on it
    (accuracy of a whole set); `raw` lists the files/folders the value was computed from."""

    metric: str
    kind: str
    value: float
    unit: str
    batch_size: int | None = None
    precision: str = ""
    note: str = ""
    raw: tuple[str, ...] = field(default=())
    lineage: dict[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ZooreproError(f"measurement {self.metric!r}: unknown kind {self.kind!r} (known: {', '.join(KINDS)})")
        object.__setattr__(self, "value", float(self.value))
        object.__setattr__(self, "raw", tuple(str(p) for p in self.raw))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["raw"] = list(self.raw)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Measurement":
        try:
            return cls(metric=d["metric"], kind=d["kind"], value=float(d["value"]), unit=d["unit"],
                       batch_size=d.get("batch_size"), precision=d.get("precision", ""), note=d.get("note", ""),
                       raw=tuple(d.get("raw", ())), lineage=dict(d.get("lineage") or {}))
        except (KeyError, TypeError, ValueError) as exc:
            raise ZooreproError(f"malformed measurement record {d!r}: {exc}") from None


@dataclass(frozen=True)
class LatencyStats:
    """Per-execute times in ms: mean, median and the 99th percentile (numpy's linear method)."""

    n: int
    mean_ms: float
    median_ms: float
    p99_ms: float


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile with linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return float(ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo))


def latency_stats(times_ms: Sequence[float]) -> LatencyStats:
    if not times_ms:
        raise ZooreproError("no timed runs to summarize")
    return LatencyStats(n=len(times_ms), mean_ms=float(statistics.fmean(times_ms)),
                        median_ms=float(statistics.median(times_ms)), p99_ms=percentile(times_ms, 99))


def write_measurements(path: Path, records: Iterable[Measurement]) -> list[Measurement]:
    """Write records atomically (a killed step leaves no half-written file), each with the sha256
    of its raw outputs as they are now (its `lineage`), and the file's own lineage record.
    Returns them."""
    records = [r if r.lineage or not r.raw else replace(r, lineage=lineage.hashes(r.raw)) for r in records]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps([r.to_dict() for r in records], indent=2) + "\n")
    # The file's own lineage (its raw outputs): when one of them is gone or rebuilt, the stale pass
    # removes this file too, so Snakemake reruns the step that wrote both (it would not rerun a
    # step for a missing output that no other step reads).
    lineage.record(path, sorted({p for r in records for p in r.raw if Path(p).exists()}))
    return records


def read_measurements(path: Path) -> list[Measurement]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ZooreproError(f"cannot read measurements {path}: {exc}") from None
    if not isinstance(data, list):
        raise ZooreproError(f"{path}: a measurement file is a JSON list of records")
    return [Measurement.from_dict(d) for d in data]


def print_measurements(records: Iterable[Measurement]) -> None:
    """One line per record for the step's log."""
    for r in records:
        bs = "" if r.batch_size is None else f" bs{r.batch_size}"
        print(f"{r.metric}{bs}: {r.value:.6g} {r.unit}")
