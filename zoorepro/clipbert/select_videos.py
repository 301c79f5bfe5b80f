"""The ANetQA files a run uses (not a document step): meta/video_<split>.json and the QA lists,
copied, or cut to a deterministic subset for a partial full-scale run.

With --video_subset N, each split keeps its first N videos in ascending id order and the questions
about them (the real ActivityNet videos are ~200 GB; a subset runs every step on a part of them).
Without it, the files are copied unchanged. Every video the kept lists name must exist under
--video_dir (<id>.mp4|mkv|webm), checked before anything is written, so a missing video is one
error naming it, not a failure halfway through frame sampling. The downstream steps
(sample_imgs_clipbert, aux_csv, eval_res) read the folder written here.

Usage: python -m zoorepro.clipbert.select_videos --dataset data/full/clipbert/dataset
         --video_dir data/full/clipbert/dataset/video --out_dir work/full/clipbert/prep/dataset [--video_subset N]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from zoorepro import lineage
from zoorepro.cli import run_step
from zoorepro.clipbert.anetqa import QA_FILES, SPLITS, read_qa, read_video_list, video_id
from zoorepro.clipbert.sample_imgs_clipbert import find_video
from zoorepro.fsutil import building_dir


def select(dataset: Path, video_dir: Path, out_dir: Path, subset: int | None) -> dict[str, tuple[int, int]]:
    kept: dict[str, tuple[list[str], list[dict]]] = {}
    for split in SPLITS:
        videos = read_video_list(dataset / "meta" / f"video_{split}.json", split)
        questions = read_qa(dataset / "qa" / QA_FILES[split], split, taxonomy=split == "val")
        if subset is not None:
            videos = sorted(videos)[:subset]
            wanted = set(videos)
            questions = [q for q in questions if video_id(q["qa_id"]) in wanted]
        kept[split] = (videos, questions)
    for videos, _ in kept.values():
        for vid in videos:
            find_video(video_dir, vid)
    with building_dir(out_dir) as tmp:
        (tmp / "meta").mkdir()
        (tmp / "qa").mkdir()
        for split, (videos, questions) in kept.items():
            (tmp / "meta" / f"video_{split}.json").write_text(json.dumps(videos))
            (tmp / "qa" / QA_FILES[split]).write_text(json.dumps(questions, ensure_ascii=False))
    lineage.record(out_dir, [dataset / "qa", dataset / "meta"])
    counts = {split: (len(v), len(q)) for split, (v, q) in kept.items()}
    print("kept " + ", ".join(f"{split}: {v} videos, {q} questions" for split, (v, q) in counts.items()))
    return counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", required=True, type=Path, help="ANetQA's dataset folder (qa/, meta/)")
    ap.add_argument("--video_dir", required=True, type=Path, help="the ActivityNet videos")
    ap.add_argument("--out_dir", required=True, type=Path)
    ap.add_argument("--video_subset", type=int, help="keep the first N videos of each split (ascending id)")
    args = ap.parse_args()
    if args.video_subset is not None and args.video_subset < 1:
        ap.error("--video_subset must be at least 1")
    select(args.dataset, args.video_dir, args.out_dir, args.video_subset)
    return 0


if __name__ == "__main__":
    run_step(main)
