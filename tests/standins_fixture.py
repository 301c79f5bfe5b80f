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


def ascend_env(era: str = "current") -> dict[str, str]:
    """The variables that select an era of the Ascend stand-ins (tests/standins/python/
    standin_versions.py): the era itself and its CANN toolkit folder, whose version files name
    the release (what set_env.sh's ASCEND_TOOLKIT_HOME does on a real host)."""
    toolkit = STANDINS / "cann" / era
    if not toolkit.is_dir():
        raise ValueError(f"no stand-in era {era!r} (folders: {sorted(p.name for p in (STANDINS / 'cann').iterdir())})")
    return {"ZOOREPRO_STANDIN_ERA": era, "ASCEND_TOOLKIT_HOME": str(toolkit)}


def activate(monkeypatch: pytest.MonkeyPatch, era: str = "current") -> None:
    """Stand-in `atc` on PATH, stand-in `ais_bench` on PYTHONPATH, both run by this interpreter,
    imitating the tools of `era` (`current`: ais_bench's 2024-02 path checks, CANN 8.0.RC2;
    `2023`: ais_bench 2023-06, CANN 6.0.1)."""
    _prepend(monkeypatch, "PATH", STANDINS / "bin")
    _prepend(monkeypatch, "PYTHONPATH", STANDINS / "python")
    monkeypatch.setenv("ZOOREPRO_STANDIN_PYTHON", sys.executable)
    for name, value in ascend_env(era).items():
        monkeypatch.setenv(name, value)


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
