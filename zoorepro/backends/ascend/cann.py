"""Which CANN release a host has, and which ONNX opsets that release's ATC accepts.

The CANN version comes from the toolkit's own version files, never from `atc --version`: real
ATC prints its "ATC start working now" banner first, and the older front end then exits 0 (the
banner would be recorded as the version) while the current one rejects the flag.

Files read, first hit wins (ASCEND_TOOLKIT_HOME, which set_env.sh exports, names the toolkit;
else `$ASCEND_HOME/ascend-toolkit/latest`):
- `<toolkit>/<arch>-linux/ascend_toolkit_install.info` or `<toolkit>/ascend_toolkit_install.info`,
  key `version` (the toolkit package's install record, Huawei's documented place);
- `<toolkit>/version.cfg`, `toolkit_running_version=[<internal>:<release>]` (the release part);
- `<toolkit>/compiler/version.info`, key `version_dir` (the compiler package ATC belongs to). Its
  `Version=` key is the component's internal number (7.6.0.1.220 for CANN 8.0.0), never read.

ATC's accepted opsets per release are data (atc_onnx_opsets.yaml beside this file), checked
before ATC runs so that an unsupported model fails with one message naming opset and release.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ...errors import ConfigError, ZooreproError
from ...yamlutil import load_file

DEFAULT_ASCEND_HOME = "/usr/local/Ascend"
OPSET_TABLE = Path(__file__).with_name("atc_onnx_opsets.yaml")
_RELEASE = re.compile(r"(\d+)\.(\d+)(?:\.(RC\d+|alpha\d+|beta\d+|T\d+|\d+))?(?:\..*)?", re.IGNORECASE)


def key_value(path: Path, key: str) -> str | None:
    """`key=value` from an Ascend .info file (version.info, ascend_toolkit_install.info)."""
    if not path.is_file():
        return None
    for line in path.read_text(errors="replace").splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() == key:
            return value.strip().strip('"') or None
    return None


def ascend_home() -> Path:
    """Where CANN and the driver live; ASCEND_HOME moves it (tests point it at a tmp dir)."""
    return Path(os.environ.get("ASCEND_HOME", DEFAULT_ASCEND_HOME))


def toolkit_root() -> Path:
    root = os.environ.get("ASCEND_TOOLKIT_HOME")
    return Path(root) if root else ascend_home() / "ascend-toolkit" / "latest"


def version_files(root: Path | None = None) -> list[tuple[Path, str]]:
    """The (file, key) pairs that may record the CANN version, in the order they are trusted."""
    root = toolkit_root() if root is None else root
    install = [root / "ascend_toolkit_install.info", *sorted(root.glob("*-linux/ascend_toolkit_install.info"))]
    return [*((path, "version") for path in install), (root / "version.cfg", "toolkit_running_version"),
            (root / "compiler" / "version.info", "version_dir")]


def _release_part(value: str) -> str:
    """version.cfg writes `[<internal>:<release>]`; the other files the release itself."""
    inner = value.strip().removeprefix("[").removesuffix("]")
    return inner.rpartition(":")[2].strip()


def toolkit_version(root: Path | None = None) -> str | None:
    """The CANN version the toolkit's files record, None when none does."""
    for path, key in version_files(root):
        value = key_value(path, key)
        version = _release_part(value) if value else None
        if version:
            return version
    return None


def release_of(version: str) -> str:
    """`8.0.RC2.alpha003` -> `8.0.RC2`, `7.0.0` -> `7.0.0`, `6.3.RC1` -> `6.3.RC1`: the release a
    version belongs to (what the opset table is keyed by)."""
    match = _RELEASE.fullmatch(version.strip())
    if not match:
        raise ZooreproError(f"cannot read a CANN release out of version {version!r}")
    major, minor, patch = match.groups()
    return f"{major}.{minor}" + (f".{patch.upper() if patch.upper().startswith('RC') else patch}" if patch else "")


@dataclass(frozen=True)
class OpsetRange:
    release: str
    low: int
    high: int
    source: str

    def __contains__(self, opset: int) -> bool:
        return self.low <= opset <= self.high


@cache
def opset_table(path: Path = OPSET_TABLE) -> dict[str, OpsetRange]:
    """release -> accepted opset range, from the data file (checked once)."""
    data = load_file(path)
    entries = data.get("releases") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: expected a non-empty `releases` list")
    table: dict[str, OpsetRange] = {}
    for entry in entries:
        try:
            low, high = (int(v) for v in entry["opset"])
            item = OpsetRange(str(entry["release"]), low, high, str(entry["source"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{path}: a release entry needs release, opset [low, high], source: {entry!r} ({exc})") from None
        if release_of(item.release) != item.release or not 1 <= low <= high or item.release in table:
            raise ConfigError(f"{path}: bad or repeated entry {entry!r}")
        table[item.release] = item
    return table


def check_opset(opset: int, version: str | None, *, where: str = "") -> OpsetRange:
    """Refuse an ONNX opset this CANN release's ATC does not accept, before ATC runs. An unknown
    release fails closed: the table names what it knows."""
    table = opset_table()
    if version is None:
        files = ", ".join(str(p) for p, _ in version_files())
        raise ZooreproError(
            f"cannot tell which CANN release this host's ATC is ({where or 'no version file'}: none of {files} "
            f"records a version), so the ONNX opset {opset} cannot be checked against ATC's supported range; "
            "source the toolkit's set_env.sh (it exports ASCEND_TOOLKIT_HOME)"
        )
    release = release_of(version)
    known = table.get(release)
    if known is None:
        raise ZooreproError(
            f"CANN {version}: release {release} is not in {OPSET_TABLE.name} (known: {', '.join(table)}); add the "
            f"ONNX opset range its ATC documentation gives before compiling opset {opset} models with it"
        )
    if opset not in known:
        raise ZooreproError(
            f"ONNX opset {opset} is outside what ATC of CANN {version} accepts (opsets {known.low}-{known.high}, "
            f"{known.source}); export the model at an opset in that range (params: <model>.opset)"
        )
    return known
