"""The environment every job of the workflow inherits, set once when the Snakefile is read.

* `python` in a rule is the interpreter running the workflow (the project's venv when started as
  .venv/bin/snakemake, even without the venv on PATH), never whatever `python` PATH finds first;
  a conda or container deployment still puts its own environment first when a job starts.
* Libraries' caches stay in the work tree, not the user's home: onnxruntime's device id and
  telemetry db (it honours XDG_CACHE_HOME), transformers/huggingface_hub, paddlenlp, matplotlib.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path


def prepare(workdir: Path | str) -> dict[str, str]:
    """Set the variables in os.environ (jobs inherit them); returns what was set."""
    cache = Path(workdir, "work", ".cache")
    settings = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "XDG_CACHE_HOME": str(cache),
        "HF_HOME": str(cache / "huggingface"),
        "PPNLP_HOME": str(cache / "paddlenlp"),
        "MPLCONFIGDIR": str(cache / "matplotlib"),
    }
    os.environ.update(settings)
    return settings
