"""The toolchain record of a runner-driven step (the table's --toolchain): the target's runner's
versions (torch/transformers/av, or MindIE-LLM's commit, torch_npu, CANN), what the step adds
(dtype, processes), and `standin: true` when the runner is a test stand-in, so the table says so."""
from __future__ import annotations

import json
from pathlib import Path

from zoorepro.config import load_params
from zoorepro.fsutil import atomic_write_text
from zoorepro.models import runner_name
from zoorepro.runners import get_runner


def write_toolchain(path: Path, model: str, target: str, extra: dict | None = None) -> dict:
    params = load_params()
    runner = get_runner(runner_name(model, target, params), target, params)
    record = {**runner.versions(), **(extra or {})}
    record.setdefault("standin", False)
    atomic_write_text(Path(path), json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record
