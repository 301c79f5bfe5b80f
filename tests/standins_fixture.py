"""Put the test stand-ins for the vendor tools (tests/standins) in front of a test's environment.

`activate(monkeypatch)` (Ascend) and `activate_ixrt(monkeypatch, root)` (Iluvatar IxRT) change
os.environ, so subprocesses (snakemake, step scripts, atc, `python -m ais_bench`, ixrtexec,
perf_engine) inherit it; monkeypatch undoes it after the test.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

STANDINS = Path(__file__).resolve().parent / "standins"


def _prepend(monkeypatch: pytest.MonkeyPatch, name: str, entry: Path) -> None:
    current = os.environ.get(name)
    monkeypatch.setenv(name, f"{entry}{os.pathsep}{current}" if current else str(entry))


def activate(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stand-in `atc` on PATH, stand-in `ais_bench` on PYTHONPATH, both run by this interpreter."""
    _prepend(monkeypatch, "PATH", STANDINS / "bin")
    _prepend(monkeypatch, "PYTHONPATH", STANDINS / "python")
    monkeypatch.setenv("ZOOREPRO_STANDIN_PYTHON", sys.executable)


def activate_ixrt(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    """Stand-in `ixrtexec` on PATH, the stand-in optimizer as IXRT_OPTIMIZER and `root` (a tree
    from standin_bytemlperf.make_tree: its byte_infer_perf folder) as BYTEMLPERF_ROOT, all run by
    this interpreter (IXRT_PYTHON is the `python3` the IxRT backend runs the optimizer and
    perf_engine with)."""
    _prepend(monkeypatch, "PATH", STANDINS / "bin")
    monkeypatch.setenv("ZOOREPRO_STANDIN_PYTHON", sys.executable)
    monkeypatch.setenv("IXRT_PYTHON", sys.executable)
    monkeypatch.setenv("IXRT_OPTIMIZER", str(STANDINS / "python" / "standin_ixrt_optimizer.py"))
    monkeypatch.setenv("BYTEMLPERF_ROOT", str(root))
