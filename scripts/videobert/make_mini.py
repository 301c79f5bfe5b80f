#!/usr/bin/env python
"""Generate the mini VideoBERT open_cifar set: cifar-100-python/{test,meta,text.npy} in the real
files' formats and a tiny random-weight CLIP in open_videobert/mini-clip/ (see
zoorepro/mini/videobert.py).

Usage: python scripts/videobert/make_mini.py --out data/mini/videobert --seed 0 --n-images 200
"""
import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from zoorepro.cli import run_step  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/mini/videobert"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-images", type=int, default=200)
    args = parser.parse_args()
    # Set before transformers is imported (it reads them once): nothing may be downloaded.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    from zoorepro.mini.videobert import make_mini

    start = time.perf_counter()
    manifest = make_mini(args.out, args.seed, args.n_images)
    print(f"wrote {len(manifest['files'])} files to {args.out} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    run_step(main)
