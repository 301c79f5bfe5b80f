"""Snakemake's lock files, made safe to keep: stale ones are cleared, live ones are respected.

Snakemake locks the outputs a run will write, so two runs in one folder (a direct `snakemake`, a
`make` target, a DVC stage) cannot write the same files at once. But its lock files outlive a
killed process (kill -9, OOM, a closed terminal), and the next run then refuses until someone runs
`--unlock`; DVC stages once passed `--nolock` to avoid that, which let them and a direct run clobber
each other. Here every main Snakemake process of the workflow also takes, while the Snakefile is
read (before Snakemake checks its locks), an exclusive `flock` on `.snakemake/zoorepro.lock` that
the kernel releases when the process dies. Whoever gets it knows no other run of this workflow is
alive in the folder, so any Snakemake lock file present is stale, and clears them; whoever does
not get it leaves the locks alone and Snakemake's own check stops a second real run (a dry run only
warns). Recovery after a kill is then the same command again (with --rerun-incomplete, which the
Makefile and the DVC stages pass).
"""
from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass, field
from pathlib import Path

_held: list[int] = []  # the open descriptor: the lock lives as long as the process


@dataclass
class RunLock:
    """What taking the lock found: `held` by this process (then `cleared` lists the stale Snakemake
    lock files removed), or held by `other` (its pid, as it wrote it)."""

    held: bool
    other: str = ""
    cleared: list[Path] = field(default_factory=list)


def hold(workdir: Path | str) -> RunLock:
    """Try the folder's run lock, non-blocking; when this process gets it, clear Snakemake's stale
    lock files."""
    snakemake_dir = Path(workdir) / ".snakemake"
    snakemake_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(snakemake_dir / "zoorepro.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        return RunLock(held=False, other=other)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _held.append(fd)
    locks = snakemake_dir / "locks"
    stale = sorted(locks.glob("*")) if locks.is_dir() else []
    for lock in stale:
        lock.unlink(missing_ok=True)
    return RunLock(held=True, cleared=stale)
