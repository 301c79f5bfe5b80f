"""The patched allennlp + allennlp_models source tree that every ViLBERT step imports.

Why: the document installs allennlp and allennlp-models from git with its two patches applied.
This project never edits site-packages; instead it copies the installed 2.10.1 packages (code-equal
to the document's pinned commits) into `work/src/vilbert/`, applies `patches/*/*.patch` there in
sorted order, and puts that folder first on `sys.path` before anything imports allennlp. The copy
is located through package metadata, not by importing it: the unpatched allennlp does not import
on this stack (see patches/README.md).
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from zoorepro.fsutil import replace_dir
from zoorepro.errors import ZooreproError

# import name -> distribution name
PACKAGES = {"allennlp": "allennlp", "allennlp_models": "allennlp-models"}
MANIFEST = "SOURCES.json"
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")


def installed_package(name: str) -> tuple[Path, str]:
    """Folder and version of an installed package, found through its distribution metadata
    (never by import, and never the patched copy even when that is already on sys.path)."""
    try:
        dist = importlib.metadata.distribution(PACKAGES[name])
    except importlib.metadata.PackageNotFoundError:
        raise ZooreproError(f"{PACKAGES[name]} is not installed in this environment "
                            "(install it with --no-deps, see envs/requirements-nodeps.txt)") from None
    folder = Path(str(dist.locate_file(name)))
    if not (folder / "__init__.py").is_file():
        raise ZooreproError(f"{PACKAGES[name]} {dist.version}: no package folder at {folder}")
    return folder, dist.version


def tree_sha256(folder: Path) -> str:
    """One digest over every file's relative path and content, so SOURCES.json records exactly
    which upstream sources were patched (a changed venv shows up as a changed digest)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def patch_files(patches_dir: Path) -> list[Path]:
    """The patches in the order they are applied: sorted by path below `patches_dir`
    (one folder per package, numbered files inside)."""
    patches = sorted(patches_dir.glob("*/*.patch"), key=lambda p: p.relative_to(patches_dir).as_posix())
    if not patches:
        raise ZooreproError(f"no patches found under {patches_dir}/*/*.patch")
    return patches


def apply_patch(patch: Path, tree: Path, label: str) -> None:
    """Apply one patch strictly: no fuzz, no reversed or already-applied hunks, no backup files.
    Any reject fails the whole build with the patch's name and patch's own report."""
    if shutil.which("patch") is None:
        raise ZooreproError("GNU patch is not installed (apt-get install patch)")
    result = subprocess.run(
        ["patch", "-p1", "--forward", "--batch", "--fuzz=0", "--no-backup-if-mismatch", "-i", str(patch)],
        cwd=tree, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ZooreproError(f"patch {label} does not apply to the installed sources:\n"
                            f"{result.stdout}{result.stderr}".rstrip())


def prepare_sources(dest: Path, patches_dir: Path) -> dict:
    """Copy the installed packages, patch them, write `dest/SOURCES.json` and move the result to
    `dest` atomically. Returns the manifest."""
    dest = Path(dest).resolve()
    patches_dir = Path(patches_dir).resolve()
    patches = patch_files(patches_dir)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        manifest: dict = {"packages": {}, "patches": []}
        for name in PACKAGES:
            folder, version = installed_package(name)
            manifest["packages"][name] = {"distribution": PACKAGES[name], "version": version,
                                          "tree_sha256": tree_sha256(folder)}
            shutil.copytree(folder, tmp / name, ignore=_IGNORED)
        for patch in patches:
            label = patch.relative_to(patches_dir).as_posix()
            apply_patch(patch, tmp, label)
            manifest["patches"].append({"file": label,
                                        "sha256": hashlib.sha256(patch.read_bytes()).hexdigest()})
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        replace_dir(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def activate(dest: Path) -> None:
    """Put the patched tree first on sys.path. Must run before anything imports allennlp: a
    module already imported from site-packages would silently stay unpatched."""
    dest = Path(dest).resolve()
    if not (dest / MANIFEST).is_file():
        raise ZooreproError(f"{dest} holds no patched sources; run scripts/vilbert/sources.py "
                            f"--dest {dest} first")
    for name in PACKAGES:
        module = sys.modules.get(name)
        if module is not None and not Path(module.__file__ or "").resolve().is_relative_to(dest):
            raise ZooreproError(f"{name} was imported from {module.__file__} before the patched "
                                f"sources in {dest} were activated")
    if str(dest) not in sys.path:
        sys.path.insert(0, str(dest))
