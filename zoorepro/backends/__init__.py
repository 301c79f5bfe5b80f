"""Backends behind one interface (base.py). Every backend is built by `get_backend(target, params)`
from params.yaml `targets.<target>`: the entry's `backend` picks the class in BACKENDS, and the
entry is parsed into that class's typed config (`<backend>/config.py`) here, once.

Building a backend is cheap and runs no tool (only `check()`, the working methods and `versions()`
do), so callers may build one just to read what it declares: `name`, `precision`,
`artifact_suffix`, `compile_tool`, `can_infer`, `harnesses`. Backend modules are imported when
first used, which keeps `python -m zoorepro` fast.
"""
from __future__ import annotations

import importlib

from ..config import target_settings
from ..errors import ConfigError
from .base import BATCH_DIM, Backend, BenchResult, Harness, InferResult
from .config import BackendConfig

# params.yaml `backend` -> the class implementing it ("module:Class", imported on first use).
BACKENDS: dict[str, str] = {
    "onnxruntime": "zoorepro.backends.onnxruntime.backend:OnnxRuntimeBackend",
    "ascend": "zoorepro.backends.ascend.backend:AscendBackend",
    "ixrt": "zoorepro.backends.ixrt.backend:IxrtBackend",
}


def backend_class(kind: str) -> type[Backend]:
    """The class registered for a params.yaml `backend` name."""
    try:
        module, _, name = BACKENDS[kind].partition(":")
    except (KeyError, TypeError):
        raise ConfigError(f"unknown backend {kind!r}: known backends are {', '.join(BACKENDS)}") from None
    return getattr(importlib.import_module(module), name)


def get_backend(target: str, params: dict) -> Backend:
    """The backend for `target`, its settings parsed and checked (a ConfigError names the key,
    `targets.<target>.<key>`). Runs no tool."""
    settings = target_settings(params, target)
    kind = settings.get("backend") if isinstance(settings, dict) else None
    if kind not in BACKENDS:
        raise ConfigError(f"targets.{target}.backend must be one of {', '.join(BACKENDS)}, got {kind!r}")
    cls = backend_class(kind)
    return cls(cls.config_class.from_settings(target, settings))


__all__ = ["BACKENDS", "BATCH_DIM", "Backend", "BackendConfig", "BenchResult", "Harness", "InferResult",
           "backend_class", "get_backend"]
