"""Checksummed, resumable downloads: http(s) with TLS always verified, file:// and local mirrors.

Why this exists: the document's recipe fetches multi-GB inputs with plain downloads and tells
users to switch TLS verification off. Here certificate checks stay on, every file is checked
against a pinned sha256 before it appears at its final path, and an interrupted download resumes
from its `.part` file (HTTP Range), with retries and a growing pause for transient failures.
"""
from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from zoorepro import __version__
from zoorepro.errors import ChecksumError, ZooreproError
from zoorepro.fsutil import CHUNK, hash_file, sha256sum
from zoorepro.progress import progress

log = logging.getLogger(__name__)

_TIMEOUT_S = 60.0
_RETRIES = 3
_BACKOFF_S = 2.0  # pause before retry n is n * _BACKOFF_S seconds
_USER_AGENT = f"zoorepro/{__version__}"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SHA256_PREFIX = re.compile(r"[0-9a-f]{6,64}")
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED_RANGE = re.compile(r"bytes \*/(\d+)")


class _Interrupted(Exception):
    """A transfer ended early or has to start over; the retry loop tries again."""


# --------------------------------------------------------------------------------------------
# checksum pins (also used by zoorepro.download.manifest)


def normalize_pins(url: str, sha256: str | None,
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


def require_pin(url: str, sha256: str | None, sha256_prefix: str | None,
                trust_on_first_use: bool) -> None:
    """Refuse an unpinned file unless the caller explicitly trusts the first bytes it sees."""
    if sha256 is None and sha256_prefix is None and not trust_on_first_use:
        raise ChecksumError(f"no pinned sha256 for {url}; pin it in manifests/*.yaml, or run "
                            f"once with --trust-on-first-use and pin the sha256 it prints")


def pin_matches(digest: str, sha256: str | None, sha256_prefix: str | None) -> bool:
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
    return download_verified(url, dest, sha256, sha256_prefix=sha256_prefix, timeout=timeout,
                             retries=retries, trust_on_first_use=trust_on_first_use)[0]


def download_verified(url: str, dest: Path, sha256: str | None, *,
                      sha256_prefix: str | None = None, timeout: float = _TIMEOUT_S,
                      retries: int = _RETRIES,
                      trust_on_first_use: bool = False) -> tuple[Path, str]:
    """`download`, also returning the verified digest so callers need not hash the file again."""
    dest = Path(dest)
    sha256, sha256_prefix = normalize_pins(url, sha256, sha256_prefix)
    require_pin(url, sha256, sha256_prefix, trust_on_first_use)
    pinned = sha256 is not None or sha256_prefix is not None
    if dest.is_file():
        digest = sha256sum(dest)
        if not pinned or pin_matches(digest, sha256, sha256_prefix):
            _note_unpinned(url, digest, pinned)
            return dest, digest
        log.warning("%s exists but has sha256 %s, expected %s; downloading it again",
                    dest, digest, _expected(sha256, sha256_prefix))
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    log.info("fetching %s -> %s", url, dest)
    digest = _fetch_to_part(url, part, timeout, retries)
    if not pin_matches(digest, sha256, sha256_prefix):
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
    with source.open("rb") as src, part.open("wb") as out, \
            progress(total=source.stat().st_size, desc=_progress_name(part), unit="B") as bar:
        for chunk in iter(lambda: src.read(CHUNK), b""):
            out.write(chunk)
            digest.update(chunk)
            bar.update(len(chunk))
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
        # An explicit verifying context: a process-wide `ssl._create_default_https_context`
        # override (what "switch verification off" recipes install) cannot reach this request.
        response = urllib.request.urlopen(request, timeout=timeout,
                                          context=ssl.create_default_context())
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            with exc:
                return _finish_unsatisfied(url, part, offset, exc.headers.get("Content-Range"))
        raise
    with response:
        if response.status == 206:
            end = _resume_end(url, part, offset, response.headers.get("Content-Range"))
            return _stream(response, part, "ab", hash_file(part), offset, end)
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
            digest: hashlib._Hash, start: int, end: int | None) -> str:
    """Append the body to `part` while hashing, showing progress from `start` (the resume
    offset); a body shorter than announced is an interruption (http.client does not raise for
    that when reading in chunks)."""
    received = start
    with part.open(mode) as out, progress(total=end, initial=start, desc=_progress_name(part), unit="B") as bar:
        for chunk in iter(lambda: response.read(CHUNK), b""):
            out.write(chunk)
            digest.update(chunk)
            received += len(chunk)
            bar.update(len(chunk))
        if end is not None and received != end:
            raise _Interrupted(f"connection closed after {received} of {end} bytes")
    return digest.hexdigest()


def _progress_name(part: Path) -> str:
    """What a download's progress lines are called: the file being written."""
    return f"download {part.name.removesuffix('.part')}"
