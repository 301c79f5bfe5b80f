"""onnxruntime: the portable targets (cpu, cuda)."""
from .backend import OnnxRuntimeBackend, session_options, zero_feeds

__all__ = ["OnnxRuntimeBackend", "session_options", "zero_feeds"]
