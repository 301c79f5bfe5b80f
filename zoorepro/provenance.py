"""Provenance: the commit, package versions, host and hashes of the raw outputs behind a table."""
from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path

from .config import REPO_ROOT
from .fsutil import sha256sum

IGNORED = {".snakemake_timestamp"}
# The distributions every table records; each model adds its own (pipeline.py PROVENANCE_PACKAGES).
PACKAGES = ("zoorepro", "numpy", "torch", "torchvision", "onnx", "onnxsim", "onnxruntime", "onnxruntime-gpu",
            "transformers", "snakemake", "dvc")


def recorded_packages() -> tuple[str, ...]:
    from . import models

    extra = [p for m in models.model_names() for p in getattr(models.pipeline(m), "PROVENANCE_PACKAGES", ())]
    return tuple(dict.fromkeys([*PACKAGES, *extra]))


def hash_path(path: Path) -> dict:
    """sha256 of a file, or of a folder as the hash over its sorted (relative path, file sha256)
    lines, so one digest names a whole folder of raw outputs. Snakemake's own marker in
    directory outputs (a timestamp) is not an output and is left out."""
    path = Path(path)
    if path.is_file():
        return {"path": str(path), "sha256": sha256sum(path), "files": 1}
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.name not in IGNORED)
    for p in files:
        h.update(f"{p.relative_to(path).as_posix()}  {sha256sum(p)}\n".encode())
    return {"path": str(path), "sha256": h.hexdigest(), "files": len(files)}


def git_state(root: Path = REPO_ROOT) -> dict:
    """The commit and whether tracked code differs from it. Fails closed: when git cannot answer
    (no git, not a repository, a safe.directory refusal) the state is recorded as unknown and
    dirty, never as a clean tree."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD")
        # The pipeline's own tracked outputs (tables, dvc.lock) do not make the code dirty.
        changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!results", ":!dvc.lock")
    except (OSError, subprocess.CalledProcessError) as exc:
        why = (getattr(exc, "stderr", "") or str(exc)).strip().splitlines()
        return {"commit": None, "dirty": True, "unknown": why[-1] if why else "git failed"}
    return {"commit": commit, "dirty": bool(changed)}


def package_versions() -> dict:
    out = {"python": sys.version.split()[0]}
    for name in recorded_packages():
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def host_info() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"hostname": platform.node(), "system": platform.platform(), "machine": platform.machine(),
            "cpu": cpu, "cpu_count": os.cpu_count()}


def collect(raw_paths: list[Path]) -> dict:
    return {"git": git_state(), "packages": package_versions(), "host": host_info(),
            "raw": {str(p): hash_path(p) for p in raw_paths}}
