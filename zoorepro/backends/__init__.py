"""Backends behind one interface (see base.py); `get_backend` maps a target to its backend."""
from __future__ import annotations

from ..config import target_settings
from .base import Backend, BenchResult, InferResult


def get_backend(target: str, params: dict) -> Backend:
    """Instantiate the backend that params.yaml `targets` names for `target` (imports lazily:
    the ascend module needs nothing vendor-specific at import time, but keeping imports lazy keeps
    `python -m zoorepro` fast)."""
    settings = target_settings(params, target)
    kind = settings["backend"]
    if kind == "onnxruntime":
        from .onnxruntime import OnnxRuntimeBackend
        return OnnxRuntimeBackend(target, settings)
    if kind == "ascend":
        from .ascend import AscendBackend
        return AscendBackend(target, settings)
    if kind == "ixrt":
        from .ixrt import IxrtBackend
        return IxrtBackend(target, settings)
    raise AssertionError(f"schema admits unknown backend {kind!r}")


__all__ = ["Backend", "BenchResult", "InferResult", "get_backend"]
