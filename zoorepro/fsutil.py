"""File-system helpers: atomic writes (a step's output is either complete or absent, never
half-written) and chunked sha256 of files."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHUNK = 1 << 20  # bytes per read when hashing or copying large files


def sha256sum(path: Path) -> str:
    """Hex sha256 of a file, read in chunks so multi-GB archives never sit in memory."""
    return hash_file(path).hexdigest()


def hash_file(path: Path) -> hashlib._Hash:
    """A sha256 object fed with the file's bytes, for callers that keep hashing (a resumed
    download appends to what is already on disk)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as stream:
        for chunk in iter(lambda: stream.read(CHUNK), b""):
            digest.update(chunk)
    return digest


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def normal_mode(path: Path, directory: bool = False) -> None:
    """Give a temp file (mkstemp: 0600) or folder (mkdtemp: 0700) the mode a plain open() or
    mkdir() would have had under the process umask, before it is renamed into place."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


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


def remove_leftovers(dest: Path) -> list[Path]:
    """Temporary siblings of `dest` a killed writer left (`.<name>.tmp-*`, `.<name>.old-*`). Only
    one job writes an output at a time (Snakemake's locks), so any found now are orphans."""
    found = sorted(Path(dest).parent.glob(f".{Path(dest).name}.tmp-*")) + \
        sorted(Path(dest).parent.glob(f".{Path(dest).name}.old-*"))
    for path in found:
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    return found


@contextmanager
def building_dir(dest: Path) -> Iterator[Path]:
    """Build a folder in a fresh temporary sibling of `dest` and swap it into place only when the
    block finishes: `with building_dir(out) as tmp: ...write into tmp...`. An exception (or a
    kill) leaves `dest` as it was; the temporary folder is removed on an exception."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(dest)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    normal_mode(tmp, directory=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_dir(tmp, dest)


@contextmanager
def writing_file(dest: Path) -> Iterator[Path]:
    """A fresh temporary path beside `dest` (same suffix, so savers that add one, such as np.save,
    keep its name) that is renamed over `dest` only when the block finishes: `with
    writing_file(out) as tmp: save(tmp)`. An exception leaves `dest` as it was and no temp file."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=f".tmp{dest.suffix}", dir=dest.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if tmp.is_file():
            normal_mode(tmp)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_tree_manifest(folder: Path, name: str, fields: dict) -> dict:
    """`folder/name`: `fields` plus `files`, the sha256 of every file below `folder` (sorted by
    path, the manifest itself not among them), as sorted JSON. Returns the manifest."""
    folder = Path(folder)
    files = {p.relative_to(folder).as_posix(): sha256sum(p) for p in sorted(folder.rglob("*"))
             if p.is_file() and p.name != name}
    manifest = {**fields, "files": files}
    atomic_write_text(folder / name, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def atomic_write_text(path: Path, text: str) -> None:
    """Write beside `path`, then rename over it."""
    with writing_file(path) as tmp:
        tmp.write_text(text)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write beside `path`, then rename over it."""
    with writing_file(path) as tmp:
        tmp.write_bytes(data)
