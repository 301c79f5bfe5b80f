"""Full scale (not a document step): the ANetQA release the user unpacked where the steps read it.

The ANetQA site hands out its QA files and the ActivityNet videos by link, not at a fixed URL, so
no rule can download them: the user unpacks them into data/full/clipbert/dataset/ as anetqa-code's
dataset/README.md lays them out (video/<id>.mp4|mkv, qa/qa_train.json, qa/qa_val.json, qa/q_test.json,
meta/video_{train,val,test}.json). This step checks that they are there and readable and records the
sha256 of each QA and meta file (the videos are counted, not hashed: ~200 GB); when something is
missing, one error names it, where to get it, and the mini table.

Usage: python -m zoorepro.clipbert.check_anetqa --dataset data/full/clipbert/dataset
         --out work/full/clipbert/prep/anetqa_release.json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from zoorepro.cli import run_step
from zoorepro.clipbert.anetqa import QA_FILES, SPLITS, read_qa, read_video_list
from zoorepro.errors import ZooreproError
from zoorepro.fsutil import atomic_write_text, sha256sum

ANETQA_SITE = "https://milvlg.github.io/anetqa/#Dataset"
NEEDED = [f"qa/{QA_FILES[s]}" for s in SPLITS] + [f"meta/video_{s}.json" for s in SPLITS] + ["video"]
VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm")


def check(dataset: Path) -> dict:
    dataset = Path(dataset)
    missing = [name for name in NEEDED if not (dataset / name).exists()]
    if missing:
        raise ZooreproError(
            f"the ANetQA release is not in {dataset}/ (missing: {', '.join(missing)}). Download the videos and "
            f"the dataset files from {ANETQA_SITE} and unzip them there (video/<id>.mp4|mkv, qa/, meta/; "
            "params clipbert.video_subset runs a part of them), or build the mini table "
            "results/mini/clipbert_cpu.csv")
    counts = {}
    for split in SPLITS:
        counts[split] = {"videos": len(read_video_list(dataset / "meta" / f"video_{split}.json", split)),
                         "questions": len(read_qa(dataset / "qa" / QA_FILES[split], split))}
    files = {name: sha256sum(dataset / name) for name in NEEDED[:-1]}
    videos = sum(1 for p in (dataset / "video").iterdir() if p.suffix in VIDEO_SUFFIXES)
    return {"dataset": str(dataset), "splits": counts, "sha256": files, "video_files": videos}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", required=True, type=Path, help="where the ANetQA release is unpacked")
    ap.add_argument("--out", required=True, type=Path, help="the record of what was found (JSON)")
    args = ap.parse_args()
    record = check(args.dataset)
    atomic_write_text(args.out, json.dumps(record, indent=1) + "\n")
    print(f"ANetQA release: {record['splits']}, {record['video_files']} video files")
    return 0


if __name__ == "__main__":
    run_step(main)
