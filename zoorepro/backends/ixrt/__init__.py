"""Iluvatar IxRT targets: optimizer.py and ixrtexec (ixrtexec.py: its shapes, command lines and
result lines) and ByteMLPerf's perf_engine (bytemlperf.py: general_perf's formats and the harness)."""
from .backend import IxrtBackend
from .bytemlperf import ByteMLPerfHarness
from .config import IxrtConfig

__all__ = ["ByteMLPerfHarness", "IxrtBackend", "IxrtConfig"]
