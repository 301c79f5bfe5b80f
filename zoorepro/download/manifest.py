"""Manifests of `full`-scale inputs and their fetching: `Entry`, `load_manifest`, the `.done/`
stamps, and `fetch_entry`, which downloads, verifies and unpacks one entry and stamps it last.

A manifest (`manifests/{model}.yaml`) lists `entries:`, each with a name, a url, a dest under
the root it is fetched into, its sha256 pin(s), and optionally `extract` (a folder) or `member`
(+ `member_dest`). Unknown keys are errors, so a misspelt pin cannot make a file unpinned.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

import yaml

from zoorepro.download.archive import extract, extract_member
from zoorepro.download.transfer import (
    download_verified,
    normalize_pins,
    pin_matches,
    require_pin,
)
from zoorepro import yamlutil
from zoorepro.errors import ZooreproError
from zoorepro.fsutil import atomic_write_text

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class Entry:
    """One input of a manifest: where it comes from, what it must hash to, where it goes.

    Paths are relative to the root the manifest is fetched into. `dest` is the downloaded
    file; `extract` (a folder) unpacks the whole archive; `member` + `member_dest` pull one
    file out of it (`member_dest` defaults to the member's base name beside `dest`).
    """

    name: str
    url: str
    dest: str
    sha256: str | None = None
    sha256_prefix: str | None = None
    extract: str | None = None
    member: str | None = None
    member_dest: str | None = None

    def __post_init__(self) -> None:
        """Validate on construction so a bad manifest fails before anything is fetched."""
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ZooreproError(f"manifest entry name {self.name!r} must be letters, digits, "
                                f"'_', '.', '-'")
        if not isinstance(self.url, str) or not self.url:
            raise ZooreproError(f"manifest entry {self.name}: url is missing")
        sha256, prefix = normalize_pins(self.url, self.sha256, self.sha256_prefix)
        object.__setattr__(self, "sha256", sha256)
        object.__setattr__(self, "sha256_prefix", prefix)
        _check_relative(self.name, "dest", self.dest)
        if self.extract is not None and self.member is not None:
            raise ZooreproError(f"manifest entry {self.name}: give extract or member, not both")
        if self.member is not None and not isinstance(self.member, str):
            raise ZooreproError(f"manifest entry {self.name}: member must be a string")
        if self.member is not None and self.member_dest is None:
            default = PurePosixPath(self.dest).parent / PurePosixPath(self.member).name
            object.__setattr__(self, "member_dest", str(default))
        if self.member is None and self.member_dest is not None:
            raise ZooreproError(f"manifest entry {self.name}: member_dest needs member")
        for key in ("extract", "member_dest"):
            _check_relative(self.name, key, getattr(self, key))
        if self.extract is not None and PurePosixPath(self.dest).is_relative_to(self.extract):
            raise ZooreproError(f"manifest entry {self.name}: dest {self.dest!r} lies inside "
                                f"extract {self.extract!r}, which extraction replaces")

    def output(self, root: Path) -> Path:
        """The path a later step reads: the extracted folder or member, else the download."""
        relative = self.extract or self.member_dest or self.dest
        return Path(root) / relative


def _check_relative(entry: str, key: str, value: str | None) -> None:
    """Manifest paths must name something strictly under the root they are fetched into
    (`extract: .` would make extraction replace the root itself)."""
    if value is None and key != "dest":
        return
    if (not isinstance(value, str) or not PurePosixPath(value).parts
            or PurePosixPath(value).is_absolute() or ".." in PurePosixPath(value).parts):
        raise ZooreproError(f"manifest entry {entry}: {key} must be a relative path inside "
                            f"the root, got {value!r}")


def load_manifest(path: Path) -> list[Entry]:
    """Read `entries:` from a manifest YAML; unknown keys and repeated names are errors so a
    misspelt `sha256` cannot silently turn a pinned file into an unpinned one."""
    path = Path(path)
    try:
        data = yamlutil.load_file(path)
    except (OSError, yaml.YAMLError) as exc:
        raise ZooreproError(f"cannot read manifest {path}: {exc}") from exc
    raw = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(raw, list):
        raise ZooreproError(f"manifest {path} needs a top-level 'entries:' list")
    entries = [_entry_from(item, path) for item in raw]
    names = [entry.name for entry in entries]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ZooreproError(f"manifest {path}: repeated entry names {repeated}")
    return entries


def _entry_from(item: object, path: Path) -> Entry:
    """One `entries:` item as an Entry, with the manifest named in any error."""
    known = set(Entry.__dataclass_fields__)
    if not isinstance(item, dict):
        raise ZooreproError(f"manifest {path}: entry {item!r} is not a mapping")
    unknown = sorted(set(item) - known)
    missing = sorted({"name", "url", "dest"} - set(item))
    if unknown or missing:
        raise ZooreproError(f"manifest {path}: entry {item.get('name')!r} has unknown keys "
                            f"{unknown} / lacks {missing} (allowed: {sorted(known)})")
    return Entry(**item)


def select_entries(entries: list[Entry], names: list[str] | None) -> list[Entry]:
    """The entries named, in the order named (all of them for None); an unknown name is an
    error that lists the known ones."""
    if names is None:
        return list(entries)
    by_name = {entry.name: entry for entry in entries}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise ZooreproError(f"no manifest entry named {unknown}; known: {sorted(by_name)}")
    return [by_name[name] for name in names]


# --------------------------------------------------------------------------------------------
# entries and stamps


@dataclass(frozen=True)
class Stamp:
    """What `fetch_entry` verified, written last: its presence means the output is complete."""

    url: str
    sha256: str
    output: str
    trusted_on_first_use: bool


def stamp_path(entry: Entry, root: Path) -> Path:
    """Where `fetch_entry` writes the stamp of `entry`: `{root}/.done/{name}`, the output the
    download rule declares."""
    return Path(root) / ".done" / entry.name


def read_stamp(entry: Entry, root: Path) -> Stamp | None:
    """The stamp of a finished `fetch_entry`, or None (absent or unreadable: fetch again)."""
    try:
        return Stamp(**json.loads(stamp_path(entry, root).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def fetch_entry(entry: Entry, root: Path, trust_on_first_use: bool = False) -> Path:
    """Download, verify and unpack one manifest entry under `root`; return its output path.

    A current stamp (same url, digest still satisfying the pins, output present) short-cuts
    everything; otherwise the old stamp is removed first, the work is redone, and a new stamp
    is written only at the end. An unpinned entry needs `trust_on_first_use` every time, and
    its stamp says so.
    """
    root = Path(root)
    require_pin(entry.url, entry.sha256, entry.sha256_prefix, trust_on_first_use)
    output = entry.output(root)
    relative = output.relative_to(root).as_posix()
    stamp = read_stamp(entry, root)
    if (stamp is not None and stamp.url == entry.url and stamp.output == relative
            and pin_matches(stamp.sha256, entry.sha256, entry.sha256_prefix) and output.exists()):
        return output
    stamp_file = stamp_path(entry, root)
    stamp_file.unlink(missing_ok=True)
    archive, digest = download_verified(entry.url, root / entry.dest, entry.sha256,
                                        sha256_prefix=entry.sha256_prefix,
                                        trust_on_first_use=trust_on_first_use)
    if entry.extract is not None:
        extract(archive, output)
    elif entry.member is not None:
        extract_member(archive, entry.member, output)
    pinned = entry.sha256 is not None or entry.sha256_prefix is not None
    _write_json(stamp_file, asdict(Stamp(entry.url, digest, relative, not pinned)))
    return output


def _write_json(path: Path, data: dict) -> None:
    """Write a small JSON file atomically (temp file + rename)."""
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")
