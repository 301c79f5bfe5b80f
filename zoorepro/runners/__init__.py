"""Runners: models executed by their own framework (PaddlePaddle for PaddleVideo's main.py; next,
torch and MindIE vs transformers next) rather than compiled from ONNX by a backend.

A runner says whether it can run on a target (`check`), which framework device that target is
(`device`), what versions and device environment it runs with (`versions`), and builds the launch
command of a distributed training script (`launch_command`: paddle.distributed.launch) — the idea of optimum-benchmark's launchers. `get_runner`
is the one factory; a model's pipeline.py names its runner (`RUNNER = "paddle"`).
"""
from __future__ import annotations

from ..config import target_settings
from .base import Runner

_RUNNERS = {"paddle": ("zoorepro.runners.paddle", "PaddleRunner"),
            "transformers": ("zoorepro.runners.transformers", "TransformersRunner"),
            "mindie": ("zoorepro.runners.mindie", "MindIERunner")}


def runner_names() -> tuple[str, ...]:
    return tuple(_RUNNERS)


def get_runner(name: str, target: str, params: dict) -> Runner:
    """The runner `name` for `target` (a params.yaml `targets` entry); cheap, probes nothing."""
    import importlib

    if name not in _RUNNERS:
        raise KeyError(f"unknown runner {name!r} (known: {', '.join(_RUNNERS)})")
    module, cls = _RUNNERS[name]
    return getattr(importlib.import_module(module), cls)(target, target_settings(params, target))


__all__ = ["Runner", "get_runner", "runner_names"]
