"""ZOOREPRO STAND-IN for Ascend's ais_bench (tests only): `python -m ais_bench` with the real
tool's flags, file layout and summary JSON, running stand-in OMs with onnxruntime on the CPU.
Its timings are CPU timings and must never be reported as Ascend results."""

__version__ = "0.0.2+zoorepro.standin"
