"""What ais_bench reads and writes, outside the tool: its input order and its summary JSON.

ais_bench pairs the files of its input folders by position after a *natural* sort
(`2.npy` before `10.npy`) and names each output after the first input file of its sample.
It writes timings only to `<output>/<dirname>_summary.json` (stdout is for people), so the
backend reads that file instead of scraping the console.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from zoorepro.errors import ZooreproError

INPUT_SUFFIXES = (".npy", ".bin")
PERCENTILE_KEY = "percentile(99%)"


def natural_key(name: str) -> list[int | str]:
    """Sort key that orders digit runs by value, so `10.npy` follows `9.npy` as in ais_bench."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def list_input_files(folder: Path) -> list[Path]:
    """The files ais_bench would read from one input folder, in the order it pairs them."""
    if not folder.is_dir():
        raise ZooreproError(f"input folder {folder} does not exist")
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in INPUT_SUFFIXES]
    return sorted(files, key=lambda p: natural_key(p.name))


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
