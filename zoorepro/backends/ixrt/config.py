"""Settings of an Iluvatar IxRT target (params.yaml `targets.<t>` with `backend: ixrt`).

The paths fall back to the environment variables the document's steps use."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ...errors import ConfigError
from ..config import (
    BackendConfig,
    non_empty_str,
    non_negative_int,
    optional_path,
    setting,
)

# The sources the document's steps run (pinned here, it clones moving branches): iluvatar-corex-ixrt
# "release 4.2.0" for tools/optimizer, DeepSparkInference tag 25.03 for toolbox/ByteMLPerf with the
# ILUVATAR backend (upstream ByteMLPerf has none). `targets.<t>.pins` may override either.
DEFAULT_PINS = {"optimizer": "6d81ff77f084e38a64ba63bcb7f2fbd6300a68e7",
                "bytemlperf": "fdf68dc917349407d991d5dfe79276c9fdd25a67"}


def parse_pins(value: Any, key: str) -> Mapping[str, str]:
    """`{optimizer: <commit>, bytemlperf: <commit>}`, either optional, over DEFAULT_PINS."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key} must map {' / '.join(DEFAULT_PINS)} to commits, got {value!r}")
    for name, commit in value.items():
        if name not in DEFAULT_PINS:
            raise ConfigError(f"{key}.{name} is not a pinned source (known: {', '.join(DEFAULT_PINS)})")
        if not isinstance(commit, str) or not commit:
            raise ConfigError(f"{key}.{name} must be a commit hash, got {commit!r}")
    return MappingProxyType({**DEFAULT_PINS, **value})


@dataclass(frozen=True, kw_only=True)
class IxrtConfig(BackendConfig):
    # The GPU ixrtexec runs on (chosen through CUDA_VISIBLE_DEVICES: ixrtexec always uses device 0).
    device: int = field(default=0, metadata=setting(non_negative_int))
    # iluvatar-corex-ixrt's tools/optimizer/optimizer.py.
    optimizer: Path | None = field(default=None, metadata=setting(optional_path, env="IXRT_OPTIMIZER"))
    # A ByteMLPerf byte_infer_perf tree with the ILUVATAR backend.
    bytemlperf_root: Path | None = field(default=None, metadata=setting(optional_path, env="BYTEMLPERF_ROOT"))
    # The SDK's interpreter: the document runs optimizer.py and perf_engine.py with `python3`, not
    # this project's venv (which lacks IxRT's `tensorrt` module).
    python: str = field(default="python3", metadata=setting(non_empty_str("a command name or path"), env="IXRT_PYTHON"))
    # The commits the optimizer checkout and the ByteMLPerf tree must be at (when git checkouts).
    pins: Mapping[str, str] = field(default_factory=lambda: MappingProxyType(dict(DEFAULT_PINS)),
                                    metadata=setting(parse_pins))
