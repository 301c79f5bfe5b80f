"""Readers of the artifacts steps pass each other (.npy arrays, ONNX graphs, JSON): a corrupt or
truncated file is one error naming the file and what it should have been, not a traceback from
deep inside numpy or protobuf that names neither (a killed writer, a disk full, a bad download)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import ZooreproError


class CorruptArtifact(ZooreproError):
    """A file a step reads is not what its name says."""


def load_npy(path: Path | str) -> np.ndarray:
    """np.load of a plain array (never a pickle: allow_pickle stays False)."""
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise CorruptArtifact(f"{path}: missing") from None
    except (ValueError, OSError, EOFError) as exc:
        raise CorruptArtifact(f"{path}: not a readable .npy array ({exc})") from None


def load_json(path: Path | str, what: str):
    """A JSON file (a dataset's, or one a step wrote), or one error naming `what` and the file."""
    import json

    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CorruptArtifact(f"{what}: {path} not found") from None
    except (OSError, ValueError) as exc:   # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise CorruptArtifact(f"{what}: {path} is not valid JSON ({exc})") from None


def load_onnx(path: Path | str, load_external_data: bool = True):
    """onnx.load with the file named on failure."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        return onnx.load(str(path), load_external_data=load_external_data)
    except FileNotFoundError:
        raise CorruptArtifact(f"{path}: missing") from None
    except (DecodeError, ValueError, OSError, RuntimeError) as exc:
        raise CorruptArtifact(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc})") from None
