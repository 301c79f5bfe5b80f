"""One small interface every backend implements (compile, run over a folder of inputs, benchmark).

Inputs follow the document's per-sample layout: one folder per model input, in model input
order, each holding `0.npy, 1.npy, ...` with a leading batch dimension of 1. Outputs follow
ais_bench's layout: `{sample}_{output_index}.npy` in one folder, one file per sample.
"""
from __future__ import annotations

import abc
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class BenchResult:
    """Throughput measured the way ais_bench does: warm-up runs, then `loop` timed executes
    on all-zero inputs; throughput = 1000 * batch_size / mean_ms (host<->device copies excluded).
    `e2e_*` includes host->device input copies and device->host output copies where the backend
    can separate them (equal to the compute figures on CPU)."""

    batch_size: int
    loop: int
    warmup: int
    times_ms: list[float]
    mean_ms: float
    median_ms: float
    p99_ms: float
    throughput: float  # samples/s = 1000 * batch_size / mean_ms
    e2e_mean_ms: float | None = None
    e2e_throughput: float | None = None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class InferResult:
    out_dir: Path
    n_samples: int
    summary: dict = field(default_factory=dict)


class Backend(abc.ABC):
    """A target's toolchain. Constructed from the target's entry in params.yaml `targets`."""

    name: str = "base"
    precision: str = "fp32"  # the numeric precision the backend computes in by default
    artifact_suffix: str = "onnx"

    def harness(self, name: str):
        """TEMP until the backends branch lands."""
        return None

    def __init__(self, target: str, settings: dict):
        self.target = target
        self.settings = dict(settings)

    def device_setting(self) -> int:
        """settings `device`: the card index, a non-negative integer (default 0)."""
        from ..errors import ConfigError

        device = self.settings.get("device", 0)
        if not isinstance(device, int) or isinstance(device, bool) or device < 0:
            raise ConfigError(f"targets.{self.target}.device must be a non-negative integer, got {device!r}")
        return device

    @abc.abstractmethod
    def check(self) -> None:
        """Raise ToolchainMissing (tool, how to get it, portable target) unless usable now."""

    @abc.abstractmethod
    def compile(self, onnx_path: Path, out_dir: Path, batch_size: int, *, input_shapes=None, tool_args=()) -> Path:
        """Turn a static-shape ONNX file into this backend's model artifact; return its path."""

    @abc.abstractmethod
    def infer(self, model: Path, input_dirs: list[Path], out_dir: Path, batch_size: int) -> InferResult:
        """Run the model over per-sample input folders; write `{i}_{k}.npy` into out_dir."""

    @abc.abstractmethod
    def benchmark(self, model: Path, batch_size: int, loop: int, warmup: int) -> BenchResult:
        """Time `loop` executes after `warmup` untimed ones, on all-zero inputs."""

    @abc.abstractmethod
    def versions(self) -> dict:
        """Toolchain versions for provenance (e.g. CANN, driver, onnxruntime, provider)."""
