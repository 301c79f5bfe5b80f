"""Checksummed, resumable downloads and safe archive extraction for the `full` scale inputs.

Why this exists: the document's recipe fetches multi-GB inputs with plain downloads and tells
users to switch TLS verification off. Here TLS verification stays on, every file is checked
against a pinned sha256 before it appears at its final path, an interrupted download resumes
from its `.part` file, and archives are unpacked into a temporary sibling folder that is renamed
into place only after every member was checked and written, so a half-done step never looks done.
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import logging
import os
import re
import shutil
import ssl
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import yaml

from zoorepro import __version__
from zoorepro.errors import ChecksumError, UnsafeArchiveError, ZooreproError
from zoorepro.fsutil import replace_dir

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
_TIMEOUT_S = 60.0
_RETRIES = 3
_BACKOFF_S = 2.0  # pause before retry n is n * _BACKOFF_S seconds
_USER_AGENT = f"zoorepro/{__version__}"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SHA256_PREFIX = re.compile(r"[0-9a-f]{6,64}")
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED_RANGE = re.compile(r"bytes \*/(\d+)")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")
# tarfile's extraction filters exist from Python 3.11.4 / 3.12 on; older ones rely on our checks.
_FILTER_ERROR = getattr(tarfile, "FilterError", ())
# What reading a damaged archive raises, depending on where the damage is.
_CORRUPT = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, gzip.BadGzipFile)


class _Interrupted(Exception):
    """A transfer ended early or has to start over; the retry loop tries again."""


# --------------------------------------------------------------------------------------------
# checksums


def sha256sum(path: Path) -> str:
    """Hex sha256 of a file, read in chunks so multi-GB archives never sit in memory."""
    return _hash_file(Path(path)).hexdigest()


def _hash_file(path: Path) -> "hashlib._Hash":
    """A sha256 object fed with the file's bytes, so a resumed download can keep hashing."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK), b""):
            digest.update(chunk)
    return digest


def _normalize_pins(url: str, sha256: str | None,
                    sha256_prefix: str | None) -> tuple[str | None, str | None]:
    """Lower-case and validate the pins up front: a typo in a pin must fail before a 6 GB
    download, not after it."""
    for pin in (sha256, sha256_prefix):
        if pin is not None and not isinstance(pin, str):
            raise ZooreproError(f"checksum pin {pin!r} for {url} must be a (quoted) hex string")
    sha256 = sha256.lower() if sha256 is not None else None
    prefix = sha256_prefix.lower() if sha256_prefix is not None else None
    if sha256 is not None and not _SHA256.fullmatch(sha256):
        raise ZooreproError(f"pinned sha256 for {url} is not 64 hex digits: {sha256!r}")
    if prefix is not None and not _SHA256_PREFIX.fullmatch(prefix):
        raise ZooreproError(f"sha256_prefix for {url} is not 6-64 hex digits: {prefix!r}")
    if sha256 is not None and prefix is not None and not sha256.startswith(prefix):
        raise ZooreproError(f"pins for {url} disagree: sha256 {sha256} does not start with "
                            f"sha256_prefix {prefix}")
    return sha256, prefix


def _require_pin(url: str, sha256: str | None, sha256_prefix: str | None,
                 trust_on_first_use: bool) -> None:
    """Refuse an unpinned file unless the caller explicitly trusts the first bytes it sees."""
    if sha256 is None and sha256_prefix is None and not trust_on_first_use:
        raise ChecksumError(f"no pinned sha256 for {url}; pin it in manifests/*.yaml, or run "
                            f"once with --trust-on-first-use and pin the sha256 it prints")


def _matches(digest: str, sha256: str | None, sha256_prefix: str | None) -> bool:
    """True when `digest` satisfies every pin given (a full digest, a torchvision-style prefix)."""
    return ((sha256 is None or digest == sha256)
            and (sha256_prefix is None or digest.startswith(sha256_prefix)))


def _expected(sha256: str | None, sha256_prefix: str | None) -> str:
    """The pin as a message shows it."""
    return sha256 if sha256 is not None else f"{sha256_prefix}... (prefix)"


# --------------------------------------------------------------------------------------------
# downloads


def download(url: str, dest: Path, sha256: str | None, *, sha256_prefix: str | None = None,
             timeout: float = _TIMEOUT_S, retries: int = _RETRIES,
             trust_on_first_use: bool = False) -> Path:
    """Fetch `url` (http, https, file:// or a local path) to `dest` and verify it.

    Bytes go to `dest.part` first; an existing `.part` is resumed with an HTTP Range request.
    `dest` appears (atomically) only once the sha256 (or the `sha256_prefix` a torchvision file
    name carries) matches; on a mismatch the `.part` is deleted and ChecksumError raised. An
    existing `dest` that verifies is returned without network access. With no pin at all the
    call raises ChecksumError unless `trust_on_first_use` is set; `fetch_entry` then records the
    digest in its stamp (or call `sha256sum(dest)`) so it can be pinned.
    """
    return _download(url, Path(dest), sha256, sha256_prefix, timeout, retries,
                     trust_on_first_use)[0]


def _download(url: str, dest: Path, sha256: str | None, sha256_prefix: str | None,
              timeout: float, retries: int, trust_on_first_use: bool) -> tuple[Path, str]:
    """`download`, also returning the verified digest so callers need not hash the file again."""
    sha256, sha256_prefix = _normalize_pins(url, sha256, sha256_prefix)
    _require_pin(url, sha256, sha256_prefix, trust_on_first_use)
    pinned = sha256 is not None or sha256_prefix is not None
    if dest.is_file():
        digest = sha256sum(dest)
        if not pinned or _matches(digest, sha256, sha256_prefix):
            _note_unpinned(url, digest, pinned)
            return dest, digest
        log.warning("%s exists but has sha256 %s, expected %s; downloading it again",
                    dest, digest, _expected(sha256, sha256_prefix))
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    log.info("fetching %s -> %s", url, dest)
    digest = _fetch_to_part(url, part, timeout, retries)
    if not _matches(digest, sha256, sha256_prefix):
        part.unlink(missing_ok=True)
        raise ChecksumError(f"checksum mismatch for {url}: expected sha256 "
                            f"{_expected(sha256, sha256_prefix)}, got {digest}; "
                            f"the downloaded bytes were deleted")
    _note_unpinned(url, digest, pinned)
    os.replace(part, dest)
    return dest, digest


def _note_unpinned(url: str, digest: str, pinned: bool) -> None:
    """Make trust-on-first-use loud: the digest has to end up in a manifest."""
    if not pinned:
        log.warning("trusting %s on first use: sha256 %s (pin it in the manifest)", url, digest)


def _fetch_to_part(url: str, part: Path, timeout: float, retries: int) -> str:
    """Fill `part` with the bytes behind `url` and return their sha256."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme in ("http", "https"):
        return _http_to_part(url, part, timeout, retries)
    if parsed.scheme == "file":
        return _copy_to_part(Path(urllib.request.url2pathname(parsed.path)), part)
    if parsed.scheme == "":
        return _copy_to_part(Path(url), part)
    raise ZooreproError(f"unsupported URL scheme {parsed.scheme!r} in {url}; "
                        f"use http(s)://, file:// or a local path")


def _copy_to_part(source: Path, part: Path) -> str:
    """Copy a local mirror's file, hashing on the way (a local copy is cheap to redo, so it
    never resumes)."""
    if not source.is_file():
        raise ZooreproError(f"local mirror file {source} does not exist")
    digest = hashlib.sha256()
    with source.open("rb") as src, part.open("wb") as out:
        for chunk in iter(lambda: src.read(_CHUNK), b""):
            out.write(chunk)
            digest.update(chunk)
    return digest.hexdigest()


def _http_to_part(url: str, part: Path, timeout: float, retries: int) -> str:
    """Try up to 1 + `retries` times; transient failures keep the `.part` so the next try
    resumes, permanent ones (404, TLS verification) stop at once."""
    last: Exception | None = None
    for attempt in range(retries + 1):
        if attempt:
            log.info("retrying %s (attempt %d of %d) after: %s", url, attempt + 1, retries + 1,
                     last)
            time.sleep(_BACKOFF_S * attempt)
        try:
            return _http_attempt(url, part, timeout)
        except urllib.error.HTTPError as exc:
            if exc.code not in (408, 429) and exc.code < 500:
                raise ZooreproError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
            last = exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, ssl.SSLError):
                raise ZooreproError(
                    f"TLS verification failed for {url}: {exc.reason}; certificate checks stay "
                    f"on, so fix the CA bundle (SSL_CERT_FILE) or point the manifest at a "
                    f"local mirror") from exc
            last = exc
        except (_Interrupted, ConnectionError, TimeoutError, http.client.HTTPException,
                ssl.SSLError) as exc:  # an SSLError here is a broken stream, not a bad certificate
            last = exc
    raise ZooreproError(f"downloading {url} failed after {retries + 1} attempts ({last}); "
                        f"running again resumes from {part} where one was written")


def _http_attempt(url: str, part: Path, timeout: float) -> str:
    """One request: resume from the end of `part` when the server honours Range (206), start
    over when it answers 200, and finish from `part` alone when it says the range is past
    the end (416) and the sizes agree."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            with exc:
                return _finish_unsatisfied(url, part, offset, exc.headers.get("Content-Range"))
        raise
    with response:
        if response.status == 206:
            end = _resume_end(url, part, offset, response.headers.get("Content-Range"))
            return _stream(response, part, "ab", _hash_file(part), offset, end)
        if offset:
            log.info("%s ignored the Range header; starting over", url)
        length = response.headers.get("Content-Length")
        end = int(length) if length and length.isdigit() else None
        return _stream(response, part, "wb", hashlib.sha256(), 0, end)


def _finish_unsatisfied(url: str, part: Path, offset: int, content_range: str | None) -> str:
    """A 416 with `bytes */N` where N equals what we have means `part` is already complete;
    anything else means `part` is not a prefix of this file, so drop it and start over."""
    match = _UNSATISFIED_RANGE.fullmatch(content_range or "")
    if match and int(match.group(1)) == offset:
        return sha256sum(part)
    part.unlink()
    raise _Interrupted(f"{url} refused to resume at byte {offset}; starting over")


def _resume_end(url: str, part: Path, offset: int, content_range: str | None) -> int:
    """Check a 206 answer resumes exactly where `part` ends; return the end byte it promises."""
    match = _CONTENT_RANGE.fullmatch(content_range or "")
    if not match or int(match.group(1)) != offset:
        part.unlink()
        raise _Interrupted(f"{url} answered Range bytes={offset}- with Content-Range "
                           f"{content_range!r}; starting over")
    return int(match.group(2)) + 1


def _stream(response: http.client.HTTPResponse, part: Path, mode: str,
            digest: "hashlib._Hash", start: int, end: int | None) -> str:
    """Append the body to `part` while hashing; a body shorter than announced is an
    interruption (http.client does not raise for that when reading in chunks)."""
    received = start
    with part.open(mode) as out:
        for chunk in iter(lambda: response.read(_CHUNK), b""):
            out.write(chunk)
            digest.update(chunk)
            received += len(chunk)
    if end is not None and received != end:
        raise _Interrupted(f"connection closed after {received} of {end} bytes")
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# extraction


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
                    shutil.copyfileobj(src, out, _CHUNK)
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
                    shutil.copyfileobj(src, out, _CHUNK)
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
                shutil.copyfileobj(source, out, _CHUNK)
    except _CORRUPT as exc:
        raise _corrupt(archive, exc) from exc


# --------------------------------------------------------------------------------------------
# manifests


@dataclass(frozen=True)
class Entry:
    """One input of a manifest: where it comes from, what it must hash to, where it goes.

    Paths are relative to the root the manifest is fetched into. `dest` is the downloaded
    file; `extract` (a folder) unpacks the whole archive; `member` + `member_dest` pull one
    file out of it (`member_dest` defaults to the member's base name beside `dest`).
    """

    name: str
    url: str
    dest: str
    sha256: str | None = None
    sha256_prefix: str | None = None
    extract: str | None = None
    member: str | None = None
    member_dest: str | None = None

    def __post_init__(self) -> None:
        """Validate on construction so a bad manifest fails before anything is fetched."""
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ZooreproError(f"manifest entry name {self.name!r} must be letters, digits, "
                                f"'_', '.', '-'")
        if not isinstance(self.url, str) or not self.url:
            raise ZooreproError(f"manifest entry {self.name}: url is missing")
        sha256, prefix = _normalize_pins(self.url, self.sha256, self.sha256_prefix)
        object.__setattr__(self, "sha256", sha256)
        object.__setattr__(self, "sha256_prefix", prefix)
        _check_relative(self.name, "dest", self.dest)
        if self.extract is not None and self.member is not None:
            raise ZooreproError(f"manifest entry {self.name}: give extract or member, not both")
        if self.member is not None and not isinstance(self.member, str):
            raise ZooreproError(f"manifest entry {self.name}: member must be a string")
        if self.member is not None and self.member_dest is None:
            default = PurePosixPath(self.dest).parent / PurePosixPath(self.member).name
            object.__setattr__(self, "member_dest", str(default))
        if self.member is None and self.member_dest is not None:
            raise ZooreproError(f"manifest entry {self.name}: member_dest needs member")
        for key in ("extract", "member_dest"):
            _check_relative(self.name, key, getattr(self, key))
        if self.extract is not None and PurePosixPath(self.dest).is_relative_to(self.extract):
            raise ZooreproError(f"manifest entry {self.name}: dest {self.dest!r} lies inside "
                                f"extract {self.extract!r}, which extraction replaces")

    def output(self, root: Path) -> Path:
        """The path a later step reads: the extracted folder or member, else the download."""
        relative = self.extract or self.member_dest or self.dest
        return Path(root) / relative


def _check_relative(entry: str, key: str, value: str | None) -> None:
    """Manifest paths must name something strictly under the root they are fetched into
    (`extract: .` would make extraction replace the root itself)."""
    if value is None and key != "dest":
        return
    if (not isinstance(value, str) or not PurePosixPath(value).parts
            or PurePosixPath(value).is_absolute() or ".." in PurePosixPath(value).parts):
        raise ZooreproError(f"manifest entry {entry}: {key} must be a relative path inside "
                            f"the root, got {value!r}")


def load_manifest(path: Path) -> list[Entry]:
    """Read `entries:` from a manifest YAML; unknown keys and repeated names are errors so a
    misspelt `sha256` cannot silently turn a pinned file into an unpinned one."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ZooreproError(f"cannot read manifest {path}: {exc}") from exc
    raw = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(raw, list):
        raise ZooreproError(f"manifest {path} needs a top-level 'entries:' list")
    entries = [_entry_from(item, path) for item in raw]
    names = [entry.name for entry in entries]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ZooreproError(f"manifest {path}: repeated entry names {repeated}")
    return entries


def _entry_from(item: object, path: Path) -> Entry:
    """One `entries:` item as an Entry, with the manifest named in any error."""
    known = set(Entry.__dataclass_fields__)
    if not isinstance(item, dict):
        raise ZooreproError(f"manifest {path}: entry {item!r} is not a mapping")
    unknown = sorted(set(item) - known)
    missing = sorted({"name", "url", "dest"} - set(item))
    if unknown or missing:
        raise ZooreproError(f"manifest {path}: entry {item.get('name')!r} has unknown keys "
                            f"{unknown} / lacks {missing} (allowed: {sorted(known)})")
    return Entry(**item)


# --------------------------------------------------------------------------------------------
# entries and stamps


@dataclass(frozen=True)
class Stamp:
    """What `fetch_entry` verified, written last: its presence means the output is complete."""

    url: str
    sha256: str
    output: str
    trusted_on_first_use: bool


def stamp_path(entry: Entry, root: Path) -> Path:
    """Where `fetch_entry` writes the stamp of `entry`: `{root}/.done/{name}`, the output the
    download rule declares."""
    return Path(root) / ".done" / entry.name


def read_stamp(entry: Entry, root: Path) -> Stamp | None:
    """The stamp of a finished `fetch_entry`, or None (absent or unreadable: fetch again)."""
    try:
        return Stamp(**json.loads(stamp_path(entry, root).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def fetch_entry(entry: Entry, root: Path, trust_on_first_use: bool = False) -> Path:
    """Download, verify and unpack one manifest entry under `root`; return its output path.

    A current stamp (same url, digest still satisfying the pins, output present) short-cuts
    everything; otherwise the old stamp is removed first, the work is redone, and a new stamp
    is written only at the end. An unpinned entry needs `trust_on_first_use` every time, and
    its stamp says so.
    """
    root = Path(root)
    _require_pin(entry.url, entry.sha256, entry.sha256_prefix, trust_on_first_use)
    output = entry.output(root)
    relative = output.relative_to(root).as_posix()
    stamp = read_stamp(entry, root)
    if (stamp is not None and stamp.url == entry.url and stamp.output == relative
            and _matches(stamp.sha256, entry.sha256, entry.sha256_prefix) and output.exists()):
        return output
    stamp_file = stamp_path(entry, root)
    stamp_file.unlink(missing_ok=True)
    archive, digest = _download(entry.url, root / entry.dest, entry.sha256, entry.sha256_prefix,
                                _TIMEOUT_S, _RETRIES, trust_on_first_use)
    if entry.extract is not None:
        extract(archive, output)
    elif entry.member is not None:
        extract_member(archive, entry.member, output)
    pinned = entry.sha256 is not None or entry.sha256_prefix is not None
    _write_json(stamp_file, asdict(Stamp(entry.url, digest, relative, not pinned)))
    return output


def _write_json(path: Path, data: dict) -> None:
    """Write a small JSON file atomically (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
