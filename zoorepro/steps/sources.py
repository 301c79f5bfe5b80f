"""A model's upstream source tree: the installed package(s) copied from the venv into --dest and
its patches (patches/<PATCH_GLOB>/*.patch, sorted) applied there, atomically; SOURCES.json records
versions, tree hashes and patch hashes. The documents' `git clone ... && git apply *.patch`.

Usage: python -m zoorepro.steps.sources --model M --dest work/src/M [--patches patches]
"""
import argparse
import json
from pathlib import Path

from zoorepro import models
from zoorepro.cli import run_step
from zoorepro.errors import ConfigError


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--dest", type=Path, required=True)
    parser.add_argument("--patches", type=Path, default=Path("patches"))
    args = parser.parse_args()
    mod = models.sources(args.model)
    if mod is None:
        raise ConfigError(f"model {args.model!r} imports no patched upstream tree (no zoorepro/{args.model}/sources.py)")
    manifest = mod.prepare_sources(args.dest, args.patches)
    print(json.dumps(manifest, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    run_step(main)
