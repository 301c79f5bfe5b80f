"""`paddle.load` for PaddleVideo's weights (.pdparams) and optimizer states (.pdopt), through the
restricted unpickler.

paddle.save writes a state dict as a pickle (protocol 4 by default) of a dict of names to numpy
arrays, plus two bookkeeping keys: `StructuredToParameterName@@` (str -> str) and, for a tensor
over 4 GB, `UnpackBigParamInfor@@` with the slices it was cut into. paddle.load unpickles it with
the plain pickle module, so a downloaded ActBERT.pdparams or bert-base-uncased.pdparams could run
anything. Here only the globals such a file names (numpy's array reconstruction, dtypes, an
OrderedDict) are admitted; anything else is an UnsafePickleError naming the global. The big-tensor
slices are joined as paddle.load joins them, and the arrays become paddle Tensors, which is what
paddle.load returns (patches/ppvideo/12 routes PaddleVideo's loads here).
"""
from __future__ import annotations

import collections
import os

import numpy as np
from numpy._core.multiarray import _reconstruct, scalar

from zoorepro.errors import ZooreproError
from zoorepro.safepickle import latin1_encode, restricted_unpickler

BIG_PARAM_KEY = "UnpackBigParamInfor@@"
NAME_TABLE_KEY = "StructuredToParameterName@@"  # paddle.load leaves it out of what it returns
ADMITTED = {
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "scalar"): scalar,
    ("numpy.core.multiarray", "scalar"): scalar,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("_codecs", "encode"): latin1_encode,
}


def _join_big_params(state: dict, path) -> dict:
    """paddle.save cuts a tensor over 4 GB into `<name>@@.<i>` slices listed under BIG_PARAM_KEY;
    a record that is not that (slices that are not arrays of the file, a shape they do not fill)
    is refused rather than trusted."""
    info = state.pop(BIG_PARAM_KEY, None)
    if not info:
        return state
    try:
        for name, record in info.items():
            slices, shape = list(record["slices"]), tuple(int(d) for d in record["OriginShape"])
            if not all(isinstance(s, str) and isinstance(state.get(s), np.ndarray) for s in slices):
                raise ValueError(f"slices of {name!r} are not arrays of this file")
            parts = [state.pop(s).reshape(-1) for s in slices]
            if sum(p.size for p in parts) != int(np.prod(shape)):
                raise ValueError(f"slices of {name!r} do not fill its shape {shape}")
            state[name] = np.concatenate(parts).reshape(shape)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ZooreproError(f"{path}: malformed {BIG_PARAM_KEY} record ({exc})") from None
    return state


def load_state(path: str | os.PathLike) -> dict:
    """The file's dict of names to numpy arrays (and plain values), restricted as above."""
    with open(path, "rb") as stream:
        try:
            state = restricted_unpickler(stream, ADMITTED, "a Paddle state dict (.pdparams/.pdopt)",
                                         encoding="latin1").load()
        except ZooreproError:
            raise
        except Exception as exc:  # a damaged pickle fails in many ways (EOFError, UnpicklingError, ...)
            raise ZooreproError(f"{path}: not a readable Paddle state dict ({type(exc).__name__}: {exc})") from exc
    if not isinstance(state, dict):
        raise ZooreproError(f"{path}: holds a {type(state).__name__}, not a state dict")
    state = dict(state)
    state.pop(NAME_TABLE_KEY, None)
    return _join_big_params(state, path)


def _tensors(value):
    """Arrays as paddle Tensors, also inside nested dicts and lists (an optimizer state's
    master weights), as paddle.load returns them."""
    import paddle

    if isinstance(value, np.ndarray):
        return paddle.to_tensor(value)
    if isinstance(value, dict):
        return {k: _tensors(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_tensors(v) for v in value)
    return value


def load(path: str | os.PathLike) -> dict:
    """What `paddle.load(path)` returns for a state dict: arrays as paddle Tensors."""
    return _tensors(load_state(path))
