"""The document's `python aux_jsonl.py` (anetqa-code clipbert/aux_jsonl.py): data_{train,val,test}.csv
to the JSON-lines files ClipBERT reads (`pd.read_csv(...).to_json(orient="records", lines=True)`).

Each line keeps pandas' rendering: the CSV's index column as "Unnamed: 0", then key, question,
answer, vid_id, gif_name, description; the empty test answers become null. pandas' default NA
parsing would also turn an answer or question such as "NA" or "null" into null; upstream lets that
through to a KeyError in training, here it is an error naming the question. The three files appear
together or none does.

Usage: python -m zoorepro.clipbert.aux_jsonl --csv_dir txt_csv --out_dir txt_db
"""
from __future__ import annotations

import argparse
from pathlib import Path

from zoorepro import lineage
from zoorepro.cli import run_step
from zoorepro.errors import ZooreproError
from zoorepro.fsutil import building_dir

SPLITS = ("train", "val", "test")


def convert(csv: Path, split: str) -> str:
    import pandas as pd

    if not csv.is_file():
        raise ZooreproError(f"{csv} does not exist (run aux_csv first)")
    frame = pd.read_csv(csv)
    must = ["key", "question"] + ([] if split == "test" else ["answer"])
    for column in must:
        if column not in frame.columns:
            raise ZooreproError(f"{csv}: no column {column!r}")
        empty = frame[column].isna()
        if empty.any():
            row = frame[empty].iloc[0]
            raise ZooreproError(f"{csv}: {int(empty.sum())} {column} value(s) read as missing by pandas "
                                f"(first: question {row.get('key')!r}); ClipBERT cannot train or score them")
    return frame.to_json(orient="records", lines=True)


def aux_jsonl(csv_dir: Path, out_dir: Path) -> None:
    texts = {split: convert(csv_dir / f"data_{split}.csv", split) for split in SPLITS}
    with building_dir(out_dir) as tmp:
        for split, text in texts.items():
            (tmp / f"data_{split}.jsonl").write_text(text, encoding="utf-8")
    for split, text in texts.items():
        print(f"data_{split}.jsonl: {text.count(chr(10))} lines")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--csv_dir", required=True, type=Path, help="aux_csv's folder")
    ap.add_argument("--out_dir", required=True, type=Path, help="folder for the three jsonl files")
    args = ap.parse_args()
    aux_jsonl(args.csv_dir, args.out_dir)
    lineage.record(args.out_dir, [args.csv_dir])
    return 0


if __name__ == "__main__":
    run_step(main)
