"""Iluvatar IxRT targets: optimizer.py, ixrtexec and ByteMLPerf (their formats sit beside them)."""
from .backend import IxrtBackend

__all__ = ["IxrtBackend"]
