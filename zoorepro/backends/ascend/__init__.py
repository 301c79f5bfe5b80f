"""Ascend NPU targets: ATC and ais_bench (ais_bench.py: its summary format)."""
from .backend import AscendBackend
from .config import AscendConfig

__all__ = ["AscendBackend", "AscendConfig"]
