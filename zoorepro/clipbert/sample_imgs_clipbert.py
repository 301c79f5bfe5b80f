"""The document's `sample_imgs_clipbert.py`: frames sampled from each ANetQA video for ClipBERT,
as the document's text and ClipBERT's loader expect them — 5 sets of 4x2 randomly sampled frames
per training video, 16 uniformly sampled frames per val/test video.

Rule (the published script's sampler): the video's frames [0, n) are cut into k equal segments at
`np.linspace(0, n, k + 1).astype(int)`; `rand` takes one frame per segment at random from
[start, end - 1) (upstream's range), `uniform` the segment's middle frame (start + end - 1) // 2.
Frames are decoded with PyAV and resized to --size x --size (the published script asks decord for
512x512, squashing the aspect ratio; ClipBERT's loader then resizes the longer side to 448 and pads).

Written, per video, as uint8 RGB arrays (T, 3, H, W) in .npy files — no pickle: `rand/<id>_<k>.npy`
(k = 1..5, T = 8: clip c is frames 2c, 2c+1) and `uniform/<id>.npy` (T = 16), plus SAMPLES.json
(the rule's parameters and every file's sha256). Random draws are seeded per (seed, video, set).

Fixed openly (README, ClipBERT section): the published script writes 9 sets of 3 frames and 3
uniform frames to other folders and stops with a NameError (`frame_ids`); its `rand` range is empty
for a one-frame segment (here: the segment's first frame); it pickles the tensors (here: .npy).
A video that is missing, cannot be decoded, or has fewer frames than a set needs is one error
naming it, and nothing is written.

Usage: python -m zoorepro.clipbert.sample_imgs_clipbert --video_dir videos --meta_dir dataset/meta
         --out_dir img [--size 512] [--seed 42] [--splits train val test]
"""
from __future__ import annotations

import argparse
import random
from pathlib import Path

import numpy as np

from zoorepro import lineage
from zoorepro.cli import run_step
from zoorepro.clipbert.anetqa import SPLITS, read_video_list
from zoorepro.errors import ZooreproError
from zoorepro.fsutil import building_dir, write_tree_manifest
from zoorepro.progress import progress
from zoorepro.readers import CorruptArtifact, load_npy

TRAIN_SETS, TRAIN_FRAMES, EVAL_FRAMES = 5, 8, 16
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm")
MANIFEST = "SAMPLES.json"


def segments(n: int, k: int) -> list[tuple[int, int]]:
    if n < k:
        raise ZooreproError(f"{n} frames, fewer than the {k} to sample")
    edges = np.linspace(0, n, k + 1).astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def rand_indices(n: int, k: int, rng: random.Random) -> list[int]:
    return [rng.choice(range(a, b - 1)) if b - 1 > a else a for a, b in segments(n, k)]


def uniform_indices(n: int, k: int) -> list[int]:
    return [(a + b - 1) // 2 for a, b in segments(n, k)]


def find_video(video_dir: Path, vid: str) -> Path:
    for ext in VIDEO_EXTENSIONS:
        if (video_dir / f"{vid}{ext}").is_file():
            return video_dir / f"{vid}{ext}"
    raise ZooreproError(f"video {vid} not found in {video_dir} (looked for {', '.join(VIDEO_EXTENSIONS)})")


def plan(vid: str, n: int, split: str, seed: int) -> dict[str, list[int]]:
    """File name -> frame indices for one video."""
    if split == "train":
        return {f"rand/{vid}_{k}.npy": rand_indices(n, TRAIN_FRAMES, random.Random(f"{seed}:{vid}:{k}"))
                for k in range(1, TRAIN_SETS + 1)}
    return {f"uniform/{vid}.npy": uniform_indices(n, EVAL_FRAMES)}


def sample_video(path: Path, vid: str, split: str, seed: int, size: int) -> dict[str, np.ndarray]:
    from zoorepro.video import decode_frames, frame_count

    n, _ = frame_count(path)
    try:
        files = plan(vid, n, split, seed)
    except ZooreproError as exc:
        raise ZooreproError(f"video {path}: {exc}") from None
    wanted = {i for indices in files.values() for i in indices}
    frames = decode_frames(path, wanted, size=(size, size))
    if len(frames) < len(wanted):
        raise ZooreproError(f"video {path} is truncated or corrupt: {n} frames reported, decoding stopped "
                            f"before frame {max(wanted)}")
    return {name: np.stack([frames[i] for i in indices]).transpose(0, 3, 1, 2).copy()
            for name, indices in files.items()}


def sample_all(video_dir: Path, meta_dir: Path, out_dir: Path, splits=SPLITS, seed: int = 42,
               size: int = 512) -> dict:
    videos = {split: read_video_list(meta_dir / f"video_{split}.json", split) for split in splits}
    paths = {vid: find_video(video_dir, vid) for split in splits for vid in videos[split]}  # all found first
    with building_dir(out_dir) as tmp:
        (tmp / "rand").mkdir()
        (tmp / "uniform").mkdir()
        with progress(total=sum(map(len, videos.values())), desc="sample frames", unit="videos") as bar:
            for split in splits:
                for vid in videos[split]:
                    for name, array in sample_video(paths[vid], vid, split, seed, size).items():
                        np.save(tmp / name, array, allow_pickle=False)
                    bar.update()
        manifest = write_tree_manifest(tmp, MANIFEST, {
            "rule": {"train_sets": TRAIN_SETS, "train_frames": TRAIN_FRAMES, "eval_frames": EVAL_FRAMES,
                     "size": size, "seed": seed, "splits": list(splits)},
            "videos": {split: len(videos[split]) for split in splits}})
    print(f"sampled {sum(manifest['videos'].values())} videos: {len(manifest['files'])} frame files in {out_dir}")
    return manifest


def load_frames(path: Path) -> np.ndarray:
    """One sampled file, read without pickle: (T, 3, H, W) uint8."""
    try:
        array = load_npy(path)
    except CorruptArtifact as exc:
        raise ZooreproError(f"not a sampled-frames .npy file: {exc}") from None
    if array.dtype != np.uint8 or array.ndim != 4 or array.shape[1] != 3:
        raise ZooreproError(f"{path}: expected uint8 frames (T, 3, H, W), got {array.dtype} {array.shape}")
    return array


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--video_dir", required=True, type=Path, help="the ActivityNet videos (<id>.mp4|mkv|webm)")
    ap.add_argument("--meta_dir", required=True, type=Path, help="ANetQA's meta/ folder (video_<split>.json)")
    ap.add_argument("--out_dir", required=True, type=Path)
    ap.add_argument("--size", type=int, default=512, help="frames are resized to size x size (upstream: 512)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--splits", nargs="+", default=list(SPLITS), choices=SPLITS)
    args = ap.parse_args()
    sample_all(args.video_dir, args.meta_dir, args.out_dir, tuple(args.splits), args.seed, args.size)
    lineage.record(args.out_dir, [args.meta_dir])   # the videos are roots, too large to hash each run
    return 0


if __name__ == "__main__":
    run_step(main)
