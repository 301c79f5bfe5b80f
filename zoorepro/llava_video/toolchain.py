"""The toolchain record of an inference step (the table's --toolchain): the target's runner's
versions (transformers/torch/av, or MindIE-LLM's commit, torch_npu, CANN) and `standin: true` when
the runner is a test stand-in, so the table says so."""
from __future__ import annotations

import json
from pathlib import Path

from zoorepro.config import load_params
from zoorepro.fsutil import atomic_write_text
from zoorepro.models import runner_name
from zoorepro.runners import get_runner


def write_toolchain(path: Path, target: str, extra: dict | None = None) -> dict:
    params = load_params()
    runner = get_runner(runner_name("llava_video", target, params), target, params)
    record = {**runner.versions(), **(extra or {})}
    record.setdefault("standin", False)
    atomic_write_text(Path(path), json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record
