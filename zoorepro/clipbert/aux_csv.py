"""The document's `python aux_csv.py` (anetqa-code clipbert/aux_csv.py): ANetQA's QA lists to the
CSV files ClipBERT's jsonl is made from.

Writes data_train_val.csv, data_train.csv, data_val.csv and data_test.csv with pandas' to_csv
(its unnamed index column first), columns key (= qa_id), question, answer ("" for test), vid_id
(= qa_id[:13]), gif_name (= vid_id), description ("none"). Rows go video by video in the order of
meta/video_<split>.json, each video's questions in the QA file's order. As upstream, a train video
without questions is skipped (and counted); a val or test video without questions is an error
(upstream: KeyError). Fixed: the test questions are read from q_test.json, the dataset's name for
them (upstream reads qa_test.json, which the dataset does not ship). The output folder holds only
these four files, which appear together or not at all.

Usage: python -m zoorepro.clipbert.aux_csv --qa_dir dataset/qa --meta_dir dataset/meta --out_dir txt
"""
from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

from zoorepro import lineage
from zoorepro.cli import run_step
from zoorepro.clipbert.anetqa import QA_FILES, SPLITS, read_qa, read_video_list, video_id
from zoorepro.errors import ZooreproError
from zoorepro.fsutil import building_dir

COLUMNS = ("key", "question", "answer", "vid_id", "gif_name", "description")
OUTPUTS = {"train_val": ("train", "val"), "train": ("train",), "val": ("val",), "test": ("test",)}


def rows_for(videos: list[str], by_video: dict, split: str, skipped: list) -> list[dict]:
    rows = []
    for vid in videos:
        if vid not in by_video:
            if split == "train":
                skipped.append(vid)
                continue
            raise ZooreproError(f"video {vid} of meta/video_{split}.json has no question in {QA_FILES[split]}")
        for qa in by_video[vid]:
            rows.append({"key": qa["qa_id"], "question": qa["question"],
                         "answer": "" if split == "test" else qa["answer"],
                         "vid_id": vid, "gif_name": vid, "description": "none"})
    return rows


def aux_csv(qa_dir: Path, meta_dir: Path, out_dir: Path) -> dict[str, int]:
    import pandas as pd

    by_video: dict[str, dict[str, list]] = {}
    videos = {}
    for split in SPLITS:
        grouped = defaultdict(list)
        for qa in read_qa(qa_dir / QA_FILES[split], split):
            grouped[video_id(qa["qa_id"])].append(qa)
        by_video[split] = grouped
        videos[split] = read_video_list(meta_dir / f"video_{split}.json", split)
    counts, skipped = {}, []
    frames = {}
    for name, splits in OUTPUTS.items():
        rows = [row for split in splits for row in rows_for(videos[split], by_video[split], split,
                                                            skipped if name == "train" else [])]
        frames[name] = pd.DataFrame(rows, columns=list(COLUMNS))
        counts[name] = len(rows)
    with building_dir(out_dir) as tmp:
        for name, frame in frames.items():
            frame.to_csv(tmp / f"data_{name}.csv")
    for name in OUTPUTS:
        print(f"data_{name}.csv: {counts[name]} questions")
    if skipped:
        print(f"{len(skipped)} train videos without questions skipped (as upstream): {', '.join(skipped[:5])}")
    return counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--qa_dir", required=True, type=Path, help="ANetQA's qa/ folder")
    ap.add_argument("--meta_dir", required=True, type=Path, help="ANetQA's meta/ folder")
    ap.add_argument("--out_dir", required=True, type=Path, help="folder for the four CSV files")
    args = ap.parse_args()
    aux_csv(args.qa_dir, args.meta_dir, args.out_dir)
    lineage.record(args.out_dir, [args.qa_dir, args.meta_dir])
    return 0


if __name__ == "__main__":
    run_step(main)
