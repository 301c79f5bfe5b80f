"""Atomic file-system helpers: a step's output is either complete or absent, never half-written."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def replace_dir(new: Path, dest: Path) -> None:
    """Put the finished folder `new` at `dest`. An older `dest` is moved aside first (a rename
    cannot overwrite a non-empty folder) and deleted only after the swap, so `dest` is never
    half-written."""
    if not (dest.exists() or dest.is_symlink()):
        os.replace(new, dest)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
    os.replace(dest, old / dest.name)
    os.replace(new, dest)
    shutil.rmtree(old)


def atomic_write_text(path: Path, text: str) -> None:
    """Write beside `path`, then rename over it."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
