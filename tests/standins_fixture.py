"""Put the test stand-ins for the Ascend tools (tests/standins) in front of a test's environment.

`activate(monkeypatch)` changes os.environ, so subprocesses (snakemake, step scripts, atc,
`python -m ais_bench`) inherit it; monkeypatch undoes it after the test.
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
