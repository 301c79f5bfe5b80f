"""The stand-in .om format shared by the stand-in atc (writer) and ais_bench (reader).

Layout: a fixed first line that no real OM starts with, one JSON line describing the model
(inputs, outputs, batch size, ATC options), then the ONNX bytes that onnxruntime will run.
The header lets the stand-in ais_bench refuse real OMs and lets anyone spot a stand-in file.
"""
from __future__ import annotations

import json
from pathlib import Path

HEADER = b"ZOOREPRO-STANDIN-OM\n"
MARK = "ZOOREPRO STAND-IN"


class StandinError(Exception):
    """A failure the stand-in tools report the way the real ones do (message, non-zero exit)."""


def write_om(path: Path, meta: dict, onnx_bytes: bytes) -> None:
    """Write header, one JSON meta line, then the ONNX model."""
    line = json.dumps(meta, separators=(",", ":")).encode() + b"\n"
    path.write_bytes(HEADER + line + onnx_bytes)


def read_om(path: Path) -> tuple[dict, bytes]:
    """Split a stand-in OM into (meta, ONNX bytes); anything else is refused."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StandinError(f"cannot read model {path}: {exc}") from None
    if not data.startswith(HEADER):
        raise StandinError(f"{path} is not a stand-in OM (only files written by the stand-in atc run here)")
    meta_line, sep, onnx_bytes = data[len(HEADER):].partition(b"\n")
    if not sep:
        raise StandinError(f"{path} is truncated")
    return json.loads(meta_line), onnx_bytes
