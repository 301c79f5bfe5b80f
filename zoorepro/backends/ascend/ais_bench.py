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
class SummaryTimes:
    """The timing fields of one summary, in milliseconds (latencies None when not recorded)."""

    times_ms: list[float]
    mean_ms: float
    median_ms: float
    p99_ms: float
    tool_throughput: float
    h2d_mean_ms: float | None
    d2h_mean_ms: float | None


def _latency_mean(summary: dict, key: str) -> float | None:
    """Mean of an H2D/D2H block; None when the tool recorded no copies (count 0 or absent)."""
    block = summary.get(key)
    if not isinstance(block, dict) or not block.get("count"):
        return None
    return float(block["mean"])


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
            h2d_mean_ms=_latency_mean(summary, "H2D_latency"),
            d2h_mean_ms=_latency_mean(summary, "D2H_latency"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ZooreproError(f"ais_bench summary lacks or garbles field {exc}") from None
    if not times or result.mean_ms <= 0:
        raise ZooreproError("ais_bench summary records no timed executes")
    return result
