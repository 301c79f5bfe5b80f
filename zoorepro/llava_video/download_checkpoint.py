"""Fetch one LLaVA-NeXT-Video checkpoint (the document's 权重下载) and verify it.

huggingface_hub's snapshot_download at the revision pinned in manifests/llava_video_checkpoints.yaml
(a 40-hex commit: a branch such as `main` moves, so it is never trusted), into
data/full/llava_video/models/LLaVA-NeXT-Video-<ckpt>-hf/ as real files (MindIE's file checks
refuse symlinks, so no cache links). Interrupted downloads resume (huggingface_hub keeps partial files).
Then every file's sha256 is checked against the manifest's `files`; a file missing, extra or
different fails the step, and nothing is marked verified. With downloads.trust_on_first_use a
checkpoint without pins is accepted once: the revision `main` resolves to and each file's sha256
are printed and recorded in .verified.json, to pin in the manifest.

Usage: python -m zoorepro.llava_video.download_checkpoint --manifest M --ckpt 7B --dest DIR [--trust-on-first-use]
"""
from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path

from zoorepro import yamlutil
from zoorepro.cli import run_step
from zoorepro.errors import ChecksumError, ZooreproError
from zoorepro.fsutil import atomic_write_text, sha256sum

REVISION = re.compile(r"[0-9a-f]{40}")
VERIFIED = ".verified.json"
SKIP = (".gitattributes", "README.md", VERIFIED)


def folder_name(ckpt: str) -> str:
    return f"LLaVA-NeXT-Video-{ckpt}-hf"


def load_pins(manifest: Path, ckpt: str) -> dict:
    pins = (yamlutil.load_file(manifest) or {}).get("checkpoints", {})
    if ckpt not in pins:
        raise ZooreproError(f"{manifest}: no checkpoint {ckpt!r} (known: {', '.join(pins)})")
    entry = pins[ckpt]
    revision = entry.get("revision")
    if revision is not None and not REVISION.fullmatch(str(revision)):
        raise ZooreproError(f"{manifest}: {ckpt}.revision must be a 40-hex commit id, not {revision!r} (a branch moves)")
    return {"repo": entry["repo"], "revision": revision, "files": dict(entry.get("files") or {})}


def snapshot(repo: str, revision: str, dest: Path) -> str:
    """The snapshot's files under `dest` (huggingface_hub; resumes partial files); returns the commit."""
    from huggingface_hub import HfApi, snapshot_download

    if revision is None:
        revision = HfApi().model_info(repo).sha  # trust on first use: what `main` is now
    snapshot_download(repo_id=repo, revision=revision, local_dir=str(dest))
    return revision


def verify(dest: Path, files: dict[str, str]) -> dict[str, str]:
    """sha256 of every file of the snapshot; ChecksumError on a pinned file missing, extra or different."""
    found = {p.relative_to(dest).as_posix(): sha256sum(p) for p in sorted(dest.rglob("*"))
             if p.is_file() and ".cache" not in p.relative_to(dest).parts and p.name not in SKIP}
    if files:
        missing = sorted(set(files) - set(found))
        extra = sorted(set(found) - set(files))
        wrong = sorted(f for f in set(files) & set(found) if files[f] != found[f])
        if missing or extra or wrong:
            raise ChecksumError(f"{dest}: " + "; ".join(
                part for part in (f"missing {missing}" if missing else "", f"not pinned {extra}" if extra else "",
                                  f"sha256 differs {wrong}" if wrong else "") if part))
    links = [f for f in found if (dest / f).is_symlink()]
    if links:
        raise ZooreproError(f"{dest}: symlinks {links[:3]} (MindIE refuses them): the snapshot must hold real files")
    return found


def fetch(manifest: Path, ckpt: str, dest_root: Path, trust_on_first_use: bool = False) -> Path:
    pins = load_pins(manifest, ckpt)
    unpinned = pins["revision"] is None or not pins["files"]
    if unpinned and not trust_on_first_use:
        raise ZooreproError(f"{ckpt}: {manifest} pins no {'revision' if pins['revision'] is None else 'file hashes'} "
                            "for it; set downloads.trust_on_first_use: true once to record them, then pin them")
    dest = dest_root / folder_name(ckpt)
    marker = dest / VERIFIED
    marker.unlink(missing_ok=True)
    os.environ.setdefault("HF_HUB_DISABLE_SYMLINKS_WARNING", "1")
    revision = snapshot(pins["repo"], pins["revision"], dest)
    hashes = verify(dest, pins["files"])
    if unpinned:
        print(f"trust on first use: {ckpt} revision {revision}; pin these in {manifest}:")
        for name, digest in hashes.items():
            print(f"      {name}: {digest}")
    atomic_write_text(marker, json.dumps({"repo": pins["repo"], "revision": revision, "files": hashes,
                                          "trusted_on_first_use": unpinned}, indent=2) + "\n")
    return dest


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--manifest", required=True, type=Path)
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--dest", required=True, type=Path, help="the models folder (data/full/llava_video/models)")
    ap.add_argument("--trust-on-first-use", action="store_true")
    args = ap.parse_args()
    print(fetch(args.manifest, args.ckpt, args.dest, args.trust_on_first_use))
    return 0


if __name__ == "__main__":
    run_step(main)
