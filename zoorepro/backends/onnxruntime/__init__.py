"""onnxruntime: the portable targets (cpu, and cuda where onnxruntime-gpu is installed)."""
from .backend import OnnxRuntimeBackend, session_options, zero_feeds
from .config import OnnxRuntimeConfig

__all__ = ["OnnxRuntimeBackend", "OnnxRuntimeConfig", "session_options", "zero_feeds"]
