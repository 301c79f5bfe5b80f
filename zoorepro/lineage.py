"""Lineage: which artifacts, by content hash, every artifact and every number was made from.

Every step that writes an artifact a number depends on (a simplified or fixed ONNX, a compiled
model, preprocessed samples, raw outputs, a perf log) records its lineage: the artifact's own
sha256 and the sha256 of each input it was made from, in `<file>.lineage.json` beside a file or
`<folder>/.lineage.json` inside a folder (left out of the folder's hash), so that whatever moves
the artifact (DVC, a copy) moves its record with it. Measurement records carry
the sha256 of the raw outputs they were computed from (zoorepro/measurements.py). Two consumers:

* the table step (`verify`): every raw output a row cites must still hash to what the row was
  measured on, and every ancestor, followed through the sidecars, must still hash to what its
  child was built from. A row whose chain is broken (an ancestor rebuilt since, or deleted by a
  killed job) makes the table refuse, naming the rows: a table never mixes two pipeline versions;
* the rerun trigger (`invalidate_stale`, run by the Snakefile before it plans): an artifact whose
  recorded input is gone or changed is removed with its sidecar, so Snakemake rebuilds it and
  everything after it. Snakemake alone would not: it does not rebuild a missing intermediate whose
  consumers' outputs still exist, which is what a killed job leaves behind.

Hashes are content hashes (zoorepro.provenance.hash_path: a folder hashes as its sorted files). To
keep a no-op run cheap, each recorded hash comes with a stat signature (a file's size and mtime_ns;
a folder's total size, file count and a digest of its name/size/mtime listing); an artifact whose
signature is unchanged is not read again.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .fsutil import atomic_write_text
from .provenance import IGNORED, hash_path

SUFFIX = ".lineage.json"
FOLDER_RECORD = SUFFIX  # the record of a folder artifact, inside it


def sidecar(path: Path | str) -> Path:
    """Where an artifact's record is: inside a folder, beside a file (or a missing artifact)."""
    path = Path(path)
    return path / FOLDER_RECORD if path.is_dir() else path.with_name(path.name + SUFFIX)


def artifact_of(record: Path) -> Path:
    """The artifact a record file describes."""
    return record.parent if record.name == FOLDER_RECORD else record.with_name(record.name[: -len(SUFFIX)])


def _files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file() and p.name not in IGNORED)


def signature(path: Path | str) -> list | None:
    """What stat says without reading a byte; None when absent. A file: [size, mtime_ns, 1]. A
    folder: [total size, file count, digest of the sorted `name size mtime_ns` lines], so a file
    renamed, added or rewritten inside it changes the signature even when sizes add up the same."""
    path = Path(path)
    if path.is_file():
        st = path.stat()
        return [st.st_size, st.st_mtime_ns, 1]
    if not path.is_dir():
        return None
    listing, total = hashlib.sha256(), 0
    files = _files(path)
    for f in files:
        st = f.stat()
        total += st.st_size
        listing.update(f"{f.relative_to(path).as_posix()} {st.st_size} {st.st_mtime_ns}\n".encode())
    return [total, len(files), listing.hexdigest()[:32]]


def read(path: Path | str) -> dict | None:
    """The artifact's lineage record, or None when it has none (a root: data, a download)."""
    try:
        return json.loads(sidecar(path).read_text())
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError):
        return {"corrupt": True}


def digest(path: Path | str, known: dict | None = None) -> str | None:
    """sha256 of a file or folder; the `known` {sha256, signature} when its signature still holds.
    None when the path does not exist."""
    sig = signature(path)
    if sig is None:
        return None
    if known and known.get("signature") == sig and known.get("sha256"):
        return known["sha256"]
    return hash_path(Path(path))["sha256"]


def _entry(path: Path | str) -> dict:
    """{sha256, signature} of an existing input, reusing its own sidecar's hash when it holds."""
    own = read(path)
    sha = digest(path, own if own and not own.get("corrupt") else None)
    if sha is None:
        raise FileNotFoundError(f"lineage: input {path} does not exist")
    return {"sha256": sha, "signature": signature(path)}


def record(output: Path | str, inputs: Iterable[Path | str]) -> dict:
    """Write `<output>.lineage.json`: the output's sha256 and those of the inputs it was made from.
    Call it after the output is complete (and in place)."""
    output = Path(output)
    entry = {"sha256": hash_path(output)["sha256"], "signature": signature(output),
             "inputs": {str(p): _entry(p) for p in sorted({str(p) for p in inputs})}}
    atomic_write_text(sidecar(output), json.dumps(entry, indent=1, sort_keys=True) + "\n")
    return entry


def hashes(paths: Iterable[Path | str]) -> dict[str, str]:
    """path -> sha256 of existing artifacts (what a measurement record carries as its lineage)."""
    out = {}
    for p in paths:
        own = read(p)
        sha = digest(p, own if own and not own.get("corrupt") else None)
        if sha is not None:
            out[str(p)] = sha
    return out


@dataclass
class Walk:
    """One pass over lineage records, memoized: `broken[path]` says why an artifact's chain does
    not hold (empty string: it holds)."""

    broken: dict[str, str] = field(default_factory=dict)

    def check(self, path: str) -> str:
        """Why `path`'s recorded chain is broken, or ''. An artifact without a record is a root."""
        if path in self.broken:
            return self.broken[path]
        self.broken[path] = ""  # a cycle cannot occur in a DAG; this only guards recursion
        own = read(path)
        reason = ""
        if own is None:  # a part of an enclosing artifact (a folder of the preprocessed samples), or a root
            enclosing = owner(path)
            reason = self.check(str(enclosing)) if enclosing is not None else ""
        else:
            if own.get("corrupt"):
                reason = f"{sidecar(path)} is unreadable"
            elif digest(path, own) != own.get("sha256"):
                reason = f"{path} changed after its lineage was recorded"
            else:
                reason = self._inputs(path, own)
        self.broken[path] = reason
        return reason

    def _inputs(self, path: str, own: dict) -> str:
        for name, want in sorted(own.get("inputs", {}).items()):
            current = digest(name, want)
            if current is None:
                return f"{path} was built from {name}, which is gone (an interrupted or deleted job)"
            if current != want.get("sha256"):
                return f"{path} was built from another version of {name} (rebuilt since)"
            deeper = self.check(name)
            if deeper:
                return deeper
        return ""


def owner(path: Path | str) -> Path | None:
    """The artifact a path belongs to: itself when it has a lineage record, else the nearest
    enclosing folder that has one (a step's raw output may be a part of an artifact, e.g. the
    labels folder of the preprocessed samples). None when no enclosing artifact records one."""
    path = Path(path)
    for candidate in (path, *path.parents):
        if candidate.name and sidecar(candidate).is_file():
            return candidate
    return None


def verify(measured: dict[str, str], walk: Walk | None = None) -> list[str]:
    """Problems with the lineage of one measurement: `measured` maps each raw output to the sha256
    it was measured on. [] when the raw outputs and all their ancestors still hold."""
    walk = walk or Walk()
    problems = []
    for path, sha in sorted(measured.items()):
        current = digest(path, read(path))
        artifact = owner(path)
        if current is None:
            problems.append(f"{path} is gone")
        elif current != sha:
            problems.append(f"{path} changed after it was measured")
        elif artifact is None:
            problems.append(f"{path} has no lineage record (written by a step that does not record one)")
        else:
            reason = walk.check(str(artifact))
            if reason:
                problems.append(reason)
    return problems


def invalidate_stale(root: Path | str, dry_run: bool = False) -> list[Path]:
    """Remove every artifact under `root` whose recorded inputs are gone or changed (and then the
    artifacts made from those, until nothing is stale), so the next plan rebuilds them. Returns
    what was (or, with `dry_run`, would be) removed. Sidecars without their artifact are removed."""
    removed: list[Path] = []
    while True:
        walk, stale = Walk(), []
        for car in sorted(Path(root).rglob("*" + SUFFIX)):
            artifact = artifact_of(car)
            if not artifact.exists():
                if not dry_run:
                    car.unlink(missing_ok=True)
                continue
            if walk.check(str(artifact)) and artifact not in removed:
                stale.append(artifact)
        if not stale:
            return removed
        removed += stale
        if dry_run:
            return removed
        for artifact in stale:
            _remove(artifact)


def _remove(artifact: Path) -> None:
    sidecar(artifact).unlink(missing_ok=True)
    if artifact.is_dir() and not artifact.is_symlink():
        shutil.rmtree(artifact)
    else:
        artifact.unlink(missing_ok=True)
