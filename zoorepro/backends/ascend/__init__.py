"""Ascend NPU targets: ATC and ais_bench (the ais_bench summary format sits beside them)."""
from .backend import AscendBackend

__all__ = ["AscendBackend"]
