#!/usr/bin/env python
"""Generate the mini ViLBERT VQA data set: images, VQA v2 JSONs, a random-weight Faster R-CNN
checkpoint, a tiny tokenizer and a tiny model archive (see zoorepro/mini/vilbert.py).

Usage: python scripts/vilbert/make_mini.py --out data/mini/vilbert --src work/src/vilbert
           --seed 0 --n-images 12 --n-questions 36
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from zoorepro.cli import run_step  # noqa: E402
from zoorepro.mini.vilbert import make_mini  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/mini/vilbert"))
    parser.add_argument("--src", type=Path, default=Path("work/src/vilbert"),
                        help="patched allennlp sources (scripts/vilbert/sources.py)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-images", type=int, default=12)
    parser.add_argument("--n-questions", type=int, default=36)
    args = parser.parse_args()
    start = time.perf_counter()
    manifest = make_mini(args.out, args.src, args.seed, args.n_images, args.n_questions)
    print(f"wrote {len(manifest['files'])} files to {args.out} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    run_step(main)
