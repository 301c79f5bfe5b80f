"""ais_bench's path and permission checks (since gitee ascend/tools 3ffe8a420e, 2024-02-01; as of
7d48a93e5b: `ais_bench/infer/common/path_security_check.py` FileStat / check_linux_permission and
`ais_bench/infer/args_check.py`), imitated for the stand-in's `current` era.

Rules, on the absolute path (so the working directory counts too):
- every checked path: at most 4096 characters, components at most 255, characters only
  `A-Z a-z 0-9 _ - / .`;
- READ (model, inputs, every entry of an input folder, an existing output prefix): exists, not a
  symlink (last component), owned by the user or the user's group, mode & 0o022 == 0, readable;
- WRITE (an existing --output, and --output_dirname resolved against the working directory):
  not a symlink, owner or group, mode & 0o027 == 0 (0o750 and stricter pass, 0o755 fails), writable.
"""
from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

MAX_PATH = 4096
MAX_NAME = 255
ILLEGAL = re.compile(r"[^_A-Za-z0-9/.-]")
READ_MASK = stat.S_IWGRP | stat.S_IWOTH
WRITE_MASK = stat.S_IWGRP | stat.S_IWOTH | stat.S_IROTH | stat.S_IXOTH
MAX_OM_BYTES = 10 * 1024 ** 3
SOLUTION = ('[SOLUTION] visit "gitee repo: Ascend/tools, path: ais-bench_workload/tool/ais_bench/README.md, '
            'chapter: FAQ/security_error" for detailed solution')


class PathRefused(Exception):
    """One refused path: the [ERROR] line ais_bench logs (the caller adds argparse's line)."""


def _refuse(message: str) -> None:
    raise PathRefused(message)


def file_stat(path: str) -> str:
    """FileStat's construction checks; the absolute path back."""
    absolute = os.path.abspath(path)
    if len(absolute) > MAX_PATH or any(len(part) > MAX_NAME for part in absolute.split("/")):
        _refuse(f"path:{absolute} is too long")
    if ILLEGAL.search(absolute):
        _refuse("path contains illegal char, legal chars include A-Z a-z 0-9 _ - / .")
    return absolute


@dataclass(frozen=True)
class _Rule:
    """check_linux_permission for one direction: the mode bits refused and the access needed."""

    mask: int
    access: int
    owner_bit: int
    role: str       # "import" (read) or "export" (write)
    most: str       # the widest mode allowed, as the message writes it
    least: str      # the narrowest mode needed


READ = _Rule(READ_MASK, os.R_OK, stat.S_IRUSR, "import", "0o755(rwxr-xr-x)", "0o400(r--------)")
WRITE = _Rule(WRITE_MASK, os.W_OK, stat.S_IWUSR, "export", "0o750(rwxr-x---)", "0o200(-w-------)")


def _permission(absolute: str, rule: _Rule) -> str:
    if os.path.islink(absolute):
        _refuse(f"path :{absolute} is a soft link, not supported, please import file(or directory) directly")
    info = os.stat(absolute)
    if info.st_uid != os.geteuid() and info.st_gid not in os.getgroups():
        _refuse(f"current user isn't path:{absolute}'s owner or ownergroup")
    if info.st_mode & rule.mask:
        _refuse(f"The file {absolute} is group writable, or is others writable, as {rule.role} file(or directory), "
                f"permission should not be over {rule.most}")
    if not os.access(absolute, rule.access) or not info.st_mode & rule.owner_bit:
        kind = "read" if rule is READ else "write"
        _refuse(f"Current user doesn't have {kind} permission to the file {absolute}, "
                f"as {rule.role} file(or directory), permission should be at least {rule.least}")
    return absolute


def check_read(path: str) -> str:
    absolute = file_stat(path)
    if not os.path.lexists(absolute):
        _refuse(f"path:{absolute} not exist")
    return _permission(absolute, READ)


def check_write(path: str) -> str:
    """Only an existing path is checked (ais_bench creates what is missing)."""
    absolute = file_stat(path)
    return _permission(absolute, WRITE) if os.path.lexists(absolute) else absolute


def check_om(path: str) -> None:
    absolute = check_read(path)
    if os.path.splitext(absolute)[1] != ".om":
        _refuse(f"om path:{absolute} is not a .om file")
    if not os.path.isfile(absolute) or os.path.getsize(absolute) > MAX_OM_BYTES:
        _refuse(f"om path:{absolute} is not a regular file of at most 10 GiB")


def check_inputs(spec: str) -> None:
    """Each comma entry, and for a folder every entry beneath it (get_fileslist_from_dir)."""
    for entry in spec.split(","):
        absolute = check_read(entry)
        if os.path.isdir(absolute):
            for child in sorted(Path(absolute).rglob("*")):
                check_read(str(child))


def check_output(path: str) -> None:
    absolute = check_write(path)
    if os.path.exists(absolute) and not os.path.isdir(absolute):
        _refuse(f"output path:{absolute} is not a directory")


def check_prefix(path: str) -> None:
    """An existing `<output>/<dirname>` at run time (check_output_dir_legality: READ rules)."""
    absolute = check_read(path)
    if not os.path.isdir(absolute):
        _refuse(f"output dir:{absolute} is not a directory")


def makedirs_safe(path: Path, mode: int) -> None:
    """Create each missing component with `mode` (makedirs_safe)."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        folder.mkdir(mode=mode)
