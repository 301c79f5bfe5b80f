"""Fetch the inputs a manifest lists (all, or those named with --name) into --root: download with
resume, verify the pinned sha256, unpack, stamp. Prints `<sha256>  <name>  <output>` per entry.
An unpinned entry needs --trust-on-first-use; the sha256 it saw is then printed for pinning.
Exit status: 0 when every entry is in place, 2 on an error the message explains."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from zoorepro.cli import run_step
from zoorepro.download.manifest import (
    fetch_entry,
    load_manifest,
    read_stamp,
    select_entries,
)
from zoorepro.errors import ZooreproError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line: manifest, root, optional entry names, the trust-on-first-use switch."""
    ap = argparse.ArgumentParser(prog="python -m zoorepro.download", description=__doc__)
    ap.add_argument("--manifest", required=True, type=Path, help="e.g. manifests/<model>.yaml")
    ap.add_argument("--root", required=True, type=Path, help="e.g. data/full/<model>")
    ap.add_argument("--name", action="append", help="entry to fetch (repeatable; default: all)")
    ap.add_argument("--trust-on-first-use", action="store_true",
                    help="accept entries with no pinned sha256 and print the sha256 to pin")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    for entry in select_entries(load_manifest(args.manifest), args.name):
        output = fetch_entry(entry, args.root, trust_on_first_use=args.trust_on_first_use)
        stamp = read_stamp(entry, args.root)
        if stamp is None:
            raise ZooreproError(f"{entry.name}: fetched, but its stamp could not be read")
        print(f"{stamp.sha256}  {entry.name}  {output}", flush=True)
        if stamp.trusted_on_first_use:
            print(f'NOT PINNED: add  sha256: "{stamp.sha256}"  to entry {entry.name} in '
                  f"{args.manifest}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_step(main)
