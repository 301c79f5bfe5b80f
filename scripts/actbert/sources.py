#!/usr/bin/env python
"""Copy the installed ppvideo (PaddleVideo 2.3.1) into --dest and apply patches/ppvideo/*.patch there
(the document's PaddleVideo checkout; see zoorepro/actbert/sources.py and patches/README.md).

Usage: python scripts/actbert/sources.py --dest work/src/actbert --patches patches
"""
import argparse
import json
import sys
from pathlib import Path

# Run as a script, this file's folder is sys.path[0]; the repo root takes its place.
sys.path[0] = str(Path(__file__).resolve().parents[2])

from zoorepro.actbert.sources import prepare_sources  # noqa: E402
from zoorepro.cli import run_step  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dest", type=Path, default=Path("work/src/actbert"))
    parser.add_argument("--patches", type=Path, default=Path("patches"))
    args = parser.parse_args()
    manifest = prepare_sources(args.dest, args.patches)
    print(json.dumps(manifest, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    run_step(main)
