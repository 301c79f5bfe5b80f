"""The patched allennlp + allennlp_models source tree that every ViLBERT step imports.

Why: the document installs allennlp and allennlp-models from git with its two patches applied.
This project never edits site-packages; instead it copies the installed 2.10.1 packages (code-equal
to the document's pinned commits) into `work/src/vilbert/` and applies `patches/allennlp*/*.patch`
there in sorted order (zoorepro/sources.py does the work), and puts that folder first on
`sys.path` before anything imports allennlp. The unpatched allennlp does not import on this stack
(see patches/README.md).
"""
from __future__ import annotations

from pathlib import Path

from zoorepro import sources

# import name -> distribution name
PACKAGES = {"allennlp": "allennlp", "allennlp_models": "allennlp-models"}
# Its patch folders below patches/: one per package (allennlp/, allennlp-models/).
PATCH_GLOB = "allennlp*"
MANIFEST = sources.MANIFEST


def installed_package(name: str) -> tuple[Path, str]:
    """Folder and version of one of PACKAGES as installed (see zoorepro.sources)."""
    return sources.installed_package(name, PACKAGES[name])


def patch_dirs(patches_dir: Path) -> list[Path]:
    """The ViLBERT patch folders below `patches_dir`: one per package (`allennlp/`,
    `allennlp-models/`); other models' folders beside them are not ViLBERT's."""
    return sorted(p for p in Path(patches_dir).glob(PATCH_GLOB) if p.is_dir())


def prepare_sources(dest: Path, patches_dir: Path) -> dict:
    """Copy the installed packages, apply `patches_dir/allennlp*/*.patch`, write
    `dest/SOURCES.json` and move the result to `dest` atomically. Returns the manifest."""
    return sources.prepare_sources(dest, patch_dirs(patches_dir), PACKAGES)


def activate(dest: Path) -> None:
    """Put the patched tree first on sys.path. Must run before anything imports allennlp."""
    sources.activate(dest, list(PACKAGES), [Path(dest)], "python -m zoorepro.steps.sources --model vilbert")
