"""Settings of an Ascend target (params.yaml `targets.<t>` with `backend: ascend`)."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field

from ..config import BackendConfig, non_empty_str, non_negative_int, setting, str_tuple


@dataclass(frozen=True, kw_only=True)
class AscendConfig(BackendConfig):
    # ATC's --soc_version: the chip, e.g. Ascend310P3.
    soc_version: str = field(metadata=setting(non_empty_str("the chip's name, e.g. Ascend310P3"),
                                              hint="name the chip, e.g. Ascend310P3"))
    # The NPU card ais_bench runs on (its --device).
    device: int = field(default=0, metadata=setting(non_negative_int))
    # How to start ais_bench: `python -m ais_bench` in this interpreter unless set.
    ais_bench: tuple[str, ...] = field(default_factory=lambda: (sys.executable, "-m", "ais_bench"),
                                       metadata=setting(str_tuple(non_empty=True)))
    # Extra ATC flags for every model compiled on this target (after the caller's tool_args).
    atc_extra: tuple[str, ...] = field(default=(), metadata=setting(str_tuple()))
