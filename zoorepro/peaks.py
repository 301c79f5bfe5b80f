"""Peak compute of a chip at a precision: data with a source per chip (peaks.yaml beside this file),
or, for this machine's CPU, measured by a matmul micro-benchmark (`--measure-cpu`).

A peak turns a throughput into "% of peak": samples/s x FLOPs a sample / peak FLOP/s. A claim whose
% of peak is above 100 is not physically possible as stated (zoorepro/verdicts.py: IMPLAUSIBLE).

Usage: python -m zoorepro.peaks                                   # the listed chips
       python -m zoorepro.peaks --measure-cpu [--seconds 3]
       python -m zoorepro.peaks --hardware cpu --precision fp32 --json work/mini/peaks/cpu.json
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

from . import yamlutil

PEAKS = Path(__file__).with_name("peaks.yaml")
# A precision label as claims, tables and torch write it -> the key peaks.yaml uses.
ALIASES = {"fp32": "fp32", "float32": "fp32", "float": "fp32", "fp16": "fp16", "float16": "fp16", "half": "fp16",
           "bf16": "bf16", "bfloat16": "bf16", "int8": "int8"}
FLOAT = ("fp16", "bf16", "fp32")


@dataclass(frozen=True)
class Peak:
    """`flops` per second of `chip` at `precision`, and where the figure comes from."""

    chip: str
    precision: str
    flops: float
    source: str
    cards: tuple[tuple[str, int], ...] = ()  # (board, chips on it) for boards with several chips

    def percent(self, flops_per_s: float) -> float:
        return 100.0 * flops_per_s / self.flops

    def describe(self) -> str:
        unit = "TOP/s" if self.precision == "int8" else "TFLOP/s"
        return f"{self.chip} {self.precision} peak {self.flops / 1e12:.4g} {unit} ({self.source})"


def precision_key(precision: str) -> str | None:
    """The peaks.yaml key of a precision label ('fp16', 'float16', 'bfloat16 autocast' ...); None
    for a label that names none ('unspecified')."""
    word = precision.lower().split()[0] if precision.strip() else ""
    return ALIASES.get(word)


@cache
def _table() -> dict:
    return yamlutil.load_file(PEAKS)


def _peak(entry: dict, chip: str, precision: str) -> Peak | None:
    peaks = entry["peak"]
    key = precision_key(precision)
    if key is None:  # not stated: the chip's largest floating-point peak, the most generous reading
        floats = [p for p in FLOAT if p in peaks]
        if not floats:
            return None
        key = max(floats, key=lambda p: peaks[p])
        source = f"{entry['source']}; precision not stated: its largest float peak ({key})"
    elif key in peaks:
        source = entry["source"]
    else:
        return None
    cards = tuple((c["name"], int(c["chips"])) for c in entry.get("cards", ()))
    return Peak(chip, key, 1e12 * float(peaks[key]), " ".join(source.split()), cards)


def chip_peak(chip: str, precision: str) -> Peak | None:
    """The peak of a named chip (a claim's or a target's hardware: '310', '310P3', 'mrv100'), or
    None when peaks.yaml does not list the chip or that precision."""
    for entry in _table()["chips"]:
        if entry["chip"] == chip:
            return _peak(entry, chip, precision)
    return None


# CUDA-compatible GPUs of other vendors whose names hold an NVIDIA model's (Iluvatar's MR-V100).
OTHER_VENDORS = re.compile(r"(?i)iluvatar|\b(MR|BI)-V\d")


def gpu_entry(device_name: str) -> dict | None:
    """The peaks.yaml GPU whose `match` is a whole word sequence of the device name, the longest
    such match winning ("H200 NVL" over "H200"; "L4" never matches "L40S"); None for GPUs not
    listed and for other vendors' CUDA-compatible GPUs."""
    if OTHER_VENDORS.search(device_name):
        return None
    found = [e for e in _table()["gpus"] if re.search(rf"(?<![\w-]){re.escape(e['match'])}(?!\w)", device_name)]
    return max(found, key=lambda e: len(e["match"])) if found else None


def gpu_peak(device_name: str, dtype: str) -> tuple[float, str] | None:
    """(peak FLOP/s, source) of a CUDA GPU by its device name, or None when it is not listed."""
    entry = gpu_entry(device_name)
    peak = _peak(entry, device_name, dtype) if entry and precision_key(dtype) else None
    return (peak.flops, peak.source) if peak else None


CPU_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


# Matmul size of the CPU measurement per precision: float32 reaches its rate at 2048; bf16/fp16 on a
# CPU without native units (this one: AVX-512 without avx512_bf16) convert the operands, which only
# large products amortize (measured quiet: bf16 33.8 GFLOP/s at 2048^2, 40.9 at 4096^2, 46.1 at the
# 7B's 1216x4096x11008 MLP product).
CPU_SIZES = {"fp32": 2048, "bf16": 4096, "fp16": 4096}


def measure_cpu(seconds: float = 3.0, size: int | None = None, precision: str = "fp32") -> Peak:
    """This machine's peak at `precision` (fp32, bf16 or fp16) as measured: the best rate of size x
    size matmuls in that dtype (torch, every thread it uses) over `seconds` (at least one timing;
    size: CPU_SIZES by default). A measured figure, not a vendor's: marked as such. (A CPU without
    native bf16/fp16 matmul units converts; the rate it reaches that way is its peak at that precision
    for torch.)"""
    import os

    import torch

    if precision not in CPU_DTYPES:
        raise ValueError(f"cannot measure this CPU at {precision!r} (known: {', '.join(CPU_DTYPES)})")
    name = CPU_DTYPES[precision]
    size = size or CPU_SIZES[precision]
    dtype = getattr(torch, name)
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    flop = 2.0 * size ** 3
    for _ in range(3):  # warm-up
        torch.mm(a, b)
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        for _ in range(4):
            torch.mm(a, b)
        best = max(best, 4 * flop / (time.perf_counter() - start))
    from .provenance import host_info

    cpu = host_info()["cpu"] or "unknown CPU"
    return Peak("cpu", precision, best, f"measured on this host ({cpu}, {os.cpu_count()} CPUs, "
                                        f"torch {torch.__version__} with {torch.get_num_threads()} threads): "
                                        f"best rate of {size}x{size} {name} matmuls over {seconds:g} s")


def hardware_peak(hardware: str, precision: str, seconds: float = 3.0) -> Peak | None:
    """A target's peak: this CPU measured, a listed chip from data, this machine's CUDA GPU by name."""
    if hardware == "cpu":
        key = precision_key(precision)
        return measure_cpu(seconds, precision=key if key in CPU_DTYPES else "fp32")
    if hardware == "cuda":
        import torch

        if not torch.cuda.is_available():
            return None
        name = torch.cuda.get_device_name(0)
        found = gpu_peak(name, precision)
        return Peak(name, precision_key(precision) or precision, found[0], found[1]) if found else None
    return chip_peak(hardware, precision)


def read_peak(path: Path) -> Peak | None:
    """A peak written by --json (None when the file says none is known)."""
    data = json.loads(Path(path).read_text())
    if data is None:
        return None
    data["cards"] = tuple(tuple(c) for c in data.get("cards", ()))
    return Peak(**data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zoorepro.peaks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--measure-cpu", action="store_true", help="measure this CPU's float32 matmul rate")
    parser.add_argument("--seconds", type=float, default=3.0, help="how long to measure (default 3)")
    parser.add_argument("--json", type=Path, help="write the peak here as JSON (null when none is known)")
    parser.add_argument("--hardware", help="a target's hardware: cpu (measured), a chip of peaks.yaml, or cuda "
                                           "(this machine's GPU by name)")
    parser.add_argument("--precision", default="fp32", help="what the target computes in (default fp32)")
    args = parser.parse_args(argv)
    if args.hardware:
        peak = hardware_peak(args.hardware, args.precision, args.seconds)
        print(peak.describe() if peak else f"no peak known for {args.hardware} at {args.precision}: no % of peak")
        if args.json:
            from .fsutil import atomic_write_text
            atomic_write_text(args.json, json.dumps(asdict(peak) if peak else None, indent=2) + "\n")
        return 0
    if args.measure_cpu:
        peak = measure_cpu(args.seconds)
        print(f"{peak.flops / 1e9:.1f} GFLOP/s  {peak.source}")
        if args.json:
            args.json.write_text(json.dumps(asdict(peak), indent=2) + "\n")
        return 0
    for entry in [*_table()["chips"], *_table()["gpus"]]:
        name = entry.get("chip") or entry["match"]
        print(f"{name:<16} " + ", ".join(f"{k} {v:g}" for k, v in entry["peak"].items()) + f"  ({' '.join(entry['source'].split())[:90]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
