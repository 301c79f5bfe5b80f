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


def _join_big_params(state: dict) -> dict:
    """paddle.save cuts a tensor over 4 GB into `<name>@@.<i>` slices listed under BIG_PARAM_KEY."""
    info = state.pop(BIG_PARAM_KEY, None)
    if not info:
        return state
    for name, record in info.items():
        parts = [state.pop(part) for part in record["slices"]]
        state[name] = np.concatenate([p.reshape(-1) for p in parts]).reshape(record["OriginShape"])
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
    return _join_big_params(state)


def load(path: str | os.PathLike) -> dict:
    """What `paddle.load(path)` returns for a state dict: arrays as paddle Tensors."""
    import paddle

    return {k: paddle.to_tensor(v) if isinstance(v, np.ndarray) else v for k, v in load_state(path).items()}
