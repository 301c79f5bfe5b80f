#!/usr/bin/env python
"""Generate the mini ActBERT data: MSR-VTT's caption csv and feature lmdb, a WordPiece vocabulary
and the HowTo100M pretraining inputs, in PaddleVideo's formats (see zoorepro/mini/actbert.py).

Usage: python scripts/actbert/make_mini_data.py --out data/mini/actbert --seed 0 --n-videos 24
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from zoorepro.cli import run_step  # noqa: E402
from zoorepro.mini.actbert import make_mini  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/mini/actbert"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-videos", type=int, default=24, help="MSR-VTT test videos (one caption each)")
    parser.add_argument("--n-pretrain", type=int, default=8,
                        help="HowTo100M training clips (the valid set gets half as many, at least one)")
    args = parser.parse_args()
    start = time.perf_counter()
    manifest = make_mini(args.out, args.seed, args.n_videos, args.n_pretrain)
    print(f"wrote {len(manifest['files'])} files to {args.out} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    run_step(main)
