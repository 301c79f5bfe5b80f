#!/usr/bin/env python
"""Copy the installed allennlp + allennlp_models into --dest and apply patches/allennlp*/*.patch there
(the document's `git clone ... && git apply ../allennlp*.patch`; see zoorepro/vilbert/sources.py).

Usage: python scripts/vilbert/sources.py --dest work/src/vilbert --patches patches
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from zoorepro.cli import run_step  # noqa: E402
from zoorepro.vilbert.sources import prepare_sources  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dest", type=Path, default=Path("work/src/vilbert"))
    parser.add_argument("--patches", type=Path, default=Path("patches"))
    args = parser.parse_args()
    manifest = prepare_sources(args.dest, args.patches)
    print(json.dumps(manifest, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    run_step(main)
