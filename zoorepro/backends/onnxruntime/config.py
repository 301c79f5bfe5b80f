"""Settings of an onnxruntime target (params.yaml `targets.<t>` with `backend: onnxruntime`)."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..config import BackendConfig, non_empty_str, setting


@dataclass(frozen=True, kw_only=True)
class OnnxRuntimeConfig(BackendConfig):
    # The execution provider every session uses, e.g. CPUExecutionProvider, CUDAExecutionProvider.
    provider: str = field(metadata=setting(non_empty_str("an onnxruntime execution provider name"),
                                           hint="an onnxruntime execution provider, e.g. CPUExecutionProvider"))
