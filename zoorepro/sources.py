"""Patched copies of installed upstream packages, the one mechanism every model's sources step uses.

Why: the documents install upstream code from git with their own patches applied, and the modern
stack needs more fixes still. This project never edits site-packages; instead it copies the
installed packages into `work/src/<model>/`, applies the patches of the given folders there with
GNU patch (strict: no fuzz, any reject fails), records versions and digests in SOURCES.json, and
the steps put that folder first on `sys.path`. Packages are located through their distribution
metadata, not by importing them: several do not import unpatched on this stack.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import shutil
import subprocess
import sys
from pathlib import Path

from zoorepro.errors import ZooreproError
from zoorepro.fsutil import building_dir

MANIFEST = "SOURCES.json"
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")


def installed_package(name: str, distribution: str) -> tuple[Path, str]:
    """Folder and version of the installed import package `name` of `distribution`, found
    through the distribution metadata (never by import, and never a patched copy even when that
    is already on sys.path)."""
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise ZooreproError(f"{distribution} is not installed in this environment "
                            "(install it with --no-deps, see envs/requirements-nodeps.txt)") from None
    folder = Path(str(dist.locate_file(name)))
    if not (folder / "__init__.py").is_file():
        raise ZooreproError(f"{distribution} {dist.version}: no package folder at {folder}")
    return folder, dist.version


def tree_sha256(folder: Path) -> str:
    """One digest over every file's relative path and content, so SOURCES.json records exactly
    which upstream sources were patched (a changed venv shows up as a changed digest)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def patch_label(patch: Path) -> str:
    """The name a patch is reported and recorded under: `<folder>/<file>`, e.g.
    `ppvideo/01-paddle-base-imports.patch`."""
    return f"{patch.parent.name}/{patch.name}"


def patch_files(patches_dirs: list[Path]) -> list[Path]:
    """The patches in the order they are applied: sorted by label (one folder per package,
    numbered files inside)."""
    patches = sorted((p for d in patches_dirs for p in Path(d).glob("*.patch")), key=patch_label)
    if not patches:
        raise ZooreproError("no patches found in " + ", ".join(str(d) for d in patches_dirs))
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


def prepare_sources(dest: Path, patches_dirs: list[Path], packages: dict[str, str]) -> dict:
    """Copy the installed `packages` (import name -> distribution name) into a fresh folder,
    apply every patch of `patches_dirs`, write SOURCES.json and move the result to `dest`
    atomically (a failure leaves nothing behind). Returns the manifest."""
    dest = Path(dest).resolve()
    patches = patch_files([Path(d).resolve() for d in patches_dirs])
    dest.parent.mkdir(parents=True, exist_ok=True)
    with building_dir(dest) as tmp:
        manifest: dict = {"packages": {}, "patches": []}
        for name, distribution in packages.items():
            folder, version = installed_package(name, distribution)
            manifest["packages"][name] = {"distribution": distribution, "version": version,
                                          "tree_sha256": tree_sha256(folder)}
            shutil.copytree(folder, tmp / name, ignore=_IGNORED)
        for patch in patches:
            label = patch_label(patch)
            apply_patch(patch, tmp, label)
            manifest["patches"].append({"file": label,
                                        "sha256": hashlib.sha256(patch.read_bytes()).hexdigest()})
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def activate(dest: Path, modules: list[str], paths: list[Path], script: str) -> None:
    """Put `paths` (folders inside the patched tree `dest`) first on sys.path, in the given order.
    Must run before anything imports `modules`: a module already imported from elsewhere would
    silently stay unpatched, so that is refused. `script` is the step that builds `dest`."""
    dest = Path(dest).resolve()
    if not (dest / MANIFEST).is_file():
        raise ZooreproError(f"{dest} holds no patched sources; run `{script} --dest {dest}` first")
    for name in modules:
        module = sys.modules.get(name)
        if module is not None and not Path(module.__file__ or "").resolve().is_relative_to(dest):
            raise ZooreproError(f"{name} was imported from {module.__file__} before the patched "
                                f"sources in {dest} were activated")
    for path in reversed([str(Path(p).resolve()) for p in paths]):
        if path in sys.path:
            sys.path.remove(path)
        sys.path.insert(0, path)
