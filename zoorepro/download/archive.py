"""Safe archive extraction: a whole .tar/.tar.gz/.tgz/.zip into a folder, or one member to a file.

Every member is checked before it is written (no absolute names, nothing that resolves outside
the extraction folder, no device files), a damaged archive is reported as such, and the work
happens in a temporary sibling that is renamed into place only after every member was checked
and written, so a half-done extraction never looks done.
"""
from __future__ import annotations

import gzip
import os
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from zoorepro.errors import UnsafeArchiveError, ZooreproError
from zoorepro.fsutil import CHUNK, replace_dir

_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")
# tarfile's extraction filters exist from Python 3.11.4 / 3.12 on; older ones rely on our checks.
_FILTER_ERROR = getattr(tarfile, "FilterError", ())
# What reading a damaged archive raises, depending on where the damage is.
_CORRUPT = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, gzip.BadGzipFile)


def extract(archive: Path, dest_dir: Path, *, members: list[str] | None = None) -> list[Path]:
    """Unpack a .tar/.tar.gz/.tgz or .zip into `dest_dir`; return the files (and links) written.

    `members` limits extraction to those names (a name ending in "/" selects a folder with
    everything under it). Every member is checked before it is written: absolute names, names
    or links that resolve outside `dest_dir`, and device/special files raise UnsafeArchiveError,
    as does a truncated or corrupt archive. Work happens in `.{name}.tmp-*` beside `dest_dir`,
    which replaces `dest_dir` only when all went well, so failures leave nothing behind.
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    unpack = _extract_zip if _archive_kind(archive) == "zip" else _extract_tar
    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest_dir.name}.tmp-", dir=dest_dir.parent))
    try:
        names = unpack(archive, tmp, members)
        _check_all_found(archive, members, names)
        tmp.chmod(0o755)
        replace_dir(tmp, dest_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [dest_dir / name for name in names if not name.endswith("/")]


def extract_member(zip_or_tar: Path, member: str, dest: Path) -> Path:
    """Write one regular-file member (e.g. the JSON inside a VQA zip) to `dest`, atomically:
    a temp file beside `dest` is renamed over it only after the member read back intact."""
    archive, dest = Path(zip_or_tar), Path(dest)
    kind = _archive_kind(archive)
    dest.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{dest.name}.tmp-", dir=dest.parent)
    tmp = Path(name)
    try:
        with os.fdopen(handle, "wb") as out:
            _copy_member(archive, kind, member, out)
        tmp.chmod(0o644)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


def _archive_kind(archive: Path) -> str:
    """Choose the reader from the file name: sniffing cannot tell a truncated zip from junk."""
    name = archive.name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith(_TAR_SUFFIXES):
        return "tar"
    raise ZooreproError(f"cannot tell the archive type of {archive}: "
                        f"expected .zip, .tar, .tar.gz or .tgz")


def _corrupt(archive: Path, exc: BaseException) -> UnsafeArchiveError:
    """The one message for every flavour of damaged archive."""
    return UnsafeArchiveError(f"{archive} is truncated or corrupt ({exc}); "
                              f"delete it and download it again")


def _selected(name: str, members: list[str] | None) -> bool:
    """Whether member `name` is asked for (exact name, or under a requested "folder/")."""
    return members is None or any(
        name == want or (want.endswith("/") and name.startswith(want)) for want in members)


def _check_all_found(archive: Path, members: list[str] | None, names: list[str]) -> None:
    """A requested member that is not there is a manifest error, not an empty success."""
    for want in members or []:
        if not any(_selected(name, [want]) for name in names):
            raise ZooreproError(f"{archive} has no member {want!r}")


def _inside(root: Path, path: str) -> bool:
    """Whether `path`, with every symlink already on disk followed, stays within `root`."""
    real = Path(os.path.realpath(path))
    return real == root or root in real.parents


def _target(root: Path, name: str, archive: Path) -> Path:
    """Where member `name` lands under `root`; refuse absolute names and escapes."""
    if PurePosixPath(name).is_absolute():
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an absolute path; "
                                 f"refusing to extract")
    target = root / name
    if not _inside(root, str(target)):
        raise UnsafeArchiveError(f"{archive}: member {name!r} would land outside the "
                                 f"extraction folder; refusing to extract")
    return target


def _check_tar_member(member: tarfile.TarInfo, root: Path, archive: Path) -> None:
    """Refuse what could write outside `root` or create device nodes, before writing it."""
    target = _target(root, member.name, archive)
    if member.issym():
        escapes = (PurePosixPath(member.linkname).is_absolute()
                   or not _inside(root, os.path.join(target.parent, member.linkname)))
    elif member.islnk():
        escapes = not _inside(root, str(root / member.linkname))
    elif member.isfile() or member.isdir():
        return
    else:
        raise UnsafeArchiveError(f"{archive}: member {member.name!r} is a device or special "
                                 f"file; refusing to extract")
    if escapes:
        raise UnsafeArchiveError(f"{archive}: link {member.name!r} -> {member.linkname!r} "
                                 f"points outside the extraction folder; refusing to extract")


def _extract_tar(archive: Path, root: Path, members: list[str] | None) -> list[str]:
    """Check and extract member by member in archive order (one pass over a .tar.gz), with
    tarfile's own "data" filter as a second line of defence where this Python has it."""
    root = Path(os.path.realpath(root))
    extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    names = []
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                if not _selected(member.name, members):
                    continue
                _check_tar_member(member, root, archive)
                tar.extract(member, root, **extra)
                names.append(member.name + "/" if member.isdir() else member.name)
    except _FILTER_ERROR as exc:
        raise UnsafeArchiveError(f"{archive}: {exc}; refusing to extract") from exc
    except _CORRUPT as exc:
        raise _corrupt(archive, exc) from exc
    return names


def _extract_zip(archive: Path, root: Path, members: list[str] | None) -> list[str]:
    """Write members ourselves: ZipFile.extract would quietly rewrite '../x' to 'x' where we
    want to refuse, and reading each member to its end makes zipfile check its CRC."""
    root = Path(os.path.realpath(root))
    names = []
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if not _selected(info.filename, members):
                    continue
                target = _target(root, info.filename, archive)
                names.append(info.filename)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, target.open("wb") as out:
                    shutil.copyfileobj(src, out, CHUNK)
    except _CORRUPT as exc:
        raise _corrupt(archive, exc) from exc
    return names


def _copy_member(archive: Path, kind: str, member: str, out: BinaryIO) -> None:
    """Stream one regular-file member into `out`."""
    try:
        if kind == "zip":
            with zipfile.ZipFile(archive) as zf:
                try:
                    info = zf.getinfo(member)
                except KeyError:
                    raise ZooreproError(f"{archive} has no file member {member!r}") from None
                if info.is_dir():
                    raise ZooreproError(f"{archive}: member {member!r} is a folder, not a file")
                with zf.open(info) as src:
                    shutil.copyfileobj(src, out, CHUNK)
            return
        with tarfile.open(archive, "r:*") as tar:
            try:
                info = tar.getmember(member)
            except KeyError:
                raise ZooreproError(f"{archive} has no file member {member!r}") from None
            source = tar.extractfile(info) if info.isfile() else None
            if source is None:
                raise UnsafeArchiveError(f"{archive}: member {member!r} is not a regular file")
            with source:
                shutil.copyfileobj(source, out, CHUNK)
    except _CORRUPT as exc:
        raise _corrupt(archive, exc) from exc
