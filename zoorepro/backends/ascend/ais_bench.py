"""ais_bench's summary JSON (its input order is the per-sample layout: ../sample_layout.py).

ais_bench writes timings only to `<output>/<dirname>_summary.json` (stdout is for people), so the
backend reads that file instead of scraping the console.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from zoorepro.errors import ZooreproError

PERCENTILE_KEY = "percentile(99%)"


def summary_path(output: Path, dirname: str) -> Path:
    """ais_bench writes its summary beside (not inside) the output folder."""
    return output / f"{dirname}_summary.json"


def read_summary(path: Path) -> dict:
    """Load a summary JSON, failing clearly when the tool did not write one."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ZooreproError(f"ais_bench wrote no summary at {path}") from None
    except json.JSONDecodeError as exc:
        raise ZooreproError(f"ais_bench summary {path} is not valid JSON: {exc}") from None


@dataclass(frozen=True)
class Copies:
    """One summary's H2D or D2H block. ais_bench records one entry per memory copy, i.e. per
    tensor: a pure-inference run (one input set, then `--loop` executes) copies each input in once
    and each output out once, so the copy time of one batch is the sum over those entries."""

    mean_ms: float
    count: int

    @property
    def total_ms(self) -> float:
        return self.mean_ms * self.count


@dataclass(frozen=True)
class SummaryTimes:
    """The timing fields of one summary, in milliseconds (copies None when not recorded)."""

    times_ms: list[float]
    mean_ms: float
    median_ms: float
    p99_ms: float
    tool_throughput: float
    h2d: Copies | None
    d2h: Copies | None

    def e2e_mean_ms(self) -> float | None:
        """Compute mean plus every copy of one pure-inference set (all input tensors in, all
        output tensors out); None when the tool recorded no copies."""
        copies = [c.total_ms for c in (self.h2d, self.d2h) if c is not None]
        return self.mean_ms + sum(copies) if copies else None


def _copies(summary: dict, key: str) -> Copies | None:
    """An H2D/D2H block; None when the tool recorded no copies (count 0 or absent)."""
    block = summary.get(key)
    if not isinstance(block, dict) or not block.get("count"):
        return None
    count = block["count"]
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ZooreproError(f"ais_bench summary {key}.count is not a count: {count!r}")
    return Copies(mean_ms=float(block["mean"]), count=count)


def summary_times(summary: dict) -> SummaryTimes:
    """Pull NPU_compute_time, its per-execute list and the copy latencies out of a summary."""
    try:
        compute = summary["NPU_compute_time"]
        times = [float(t) for t in summary["npu_compute_time_list"]]
        result = SummaryTimes(
            times_ms=times,
            mean_ms=float(compute["mean"]),
            median_ms=float(compute["median"]),
            p99_ms=float(compute[PERCENTILE_KEY]),
            tool_throughput=float(summary["throughput"]),
            h2d=_copies(summary, "H2D_latency"),
            d2h=_copies(summary, "D2H_latency"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ZooreproError(f"ais_bench summary lacks or garbles field {exc}") from None
    if not times or result.mean_ms <= 0:
        raise ZooreproError("ais_bench summary records no timed executes")
    return result
