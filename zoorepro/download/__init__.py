"""Checksummed, resumable downloads and safe archive extraction for the `full` scale inputs.

- `zoorepro.download.transfer`: `download` (http(s) with TLS verified, file://, local paths;
  `.part` resume over HTTP Range, retries with back-off, sha256 pins checked before the file
  appears at its final path).
- `zoorepro.download.archive`: `extract` (whole archive into a folder) and `extract_member`
  (one file), both refusing unsafe members and both atomic.
- `zoorepro.download.manifest`: `Entry`, `load_manifest`, `select_entries`, the `.done/` stamps
  (`Stamp`, `stamp_path`, `read_stamp`) and `fetch_entry`, which puts the three together.
- `python -m zoorepro.download --manifest M --root R [--name E ...] [--trust-on-first-use]`
  fetches a manifest's entries from the command line (the download rules call it).

`sha256sum` lives in `zoorepro.fsutil` and is re-exported here.
"""
from zoorepro.download.archive import extract, extract_member
from zoorepro.download.manifest import (
                                        Entry,
                                        Stamp,
                                        fetch_entry,
                                        load_manifest,
                                        read_stamp,
                                        select_entries,
                                        stamp_path,
)
from zoorepro.download.transfer import download, download_verified
from zoorepro.fsutil import sha256sum

__all__ = ["Entry", "Stamp", "download", "download_verified", "extract", "extract_member",
           "fetch_entry", "load_manifest", "read_stamp", "select_entries", "sha256sum",
           "stamp_path"]
