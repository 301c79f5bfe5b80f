"""Restricted unpickling for data files that are pickles (CIFAR-100 "python" files, MSR-VTT lmdb
feature records): only the globals such a file names are resolved, so a file cannot make the
loader call anything else. Every opcode that reaches a global (GLOBAL, STACK_GLOBAL, INST, OBJ,
EXT*) goes through find_class."""
from __future__ import annotations

import pickle
from collections.abc import Mapping
from typing import BinaryIO

from zoorepro.errors import UnsafePickleError


def latin1_encode(text: str, encoding: str) -> bytes:
    """Stands in for `_codecs.encode`, which Python 3 pickles of protocol < 3 call to rebuild every
    bytes object (an array's raw data included), always as `encode(text, "latin1")`. Any other
    codec is refused: a codec name makes the codec registry import a module of the file's choosing."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError(f"_codecs.encode(..., {encoding!r}) is not admitted: only latin1 "
                                f"text, as Python 3 pickles of bytes use it")
    return text.encode("latin1")


def restricted_unpickler(stream: BinaryIO, admitted: Mapping[tuple[str, str], object], what: str,
                         **kwargs) -> pickle.Unpickler:
    """A pickle.Unpickler over `stream` that resolves only `admitted` ((module, name) -> object) and
    refuses anything else with an UnsafePickleError naming it and `what` the file should be."""

    class _Restricted(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> object:
            try:
                return admitted[(module, name)]
            except KeyError:
                raise UnsafePickleError(f"pickle asks for {module}.{name}, which {what} never needs; "
                                        f"refusing to load it") from None

    return _Restricted(stream, **kwargs)
