"""One interface every backend implements (compile, run over a folder of inputs, benchmark), and
what a backend declares about itself without running anything (name, precision, artifact suffix,
optional capabilities).

Inputs follow the per-sample layout (sample_layout.py): one folder per model input, in model
input order, each holding `0.npy, 1.npy, ...` with a leading batch dimension of 1. Outputs follow
ais_bench's layout: `{sample}_{output_index}.npy` in one folder, one file per sample.

Backends know no model: input shapes and tool flags come from the caller (params.yaml or the
model's package), never from a backend's own table.
"""
from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import ClassVar

from ..errors import ConfigError
from .config import BackendConfig

BATCH_DIM = "bs"  # in input shapes, the dimension that takes the batch size
InputShapes = dict[str, list[int | str]]


def validate_input_shapes(value: object, what: str = "input_shapes") -> InputShapes:
    """`{name: [dims]}` in model input order, each dim a positive integer or the word `bs` (at most
    one per input: the batched dim). Returns a copy; a wrong entry is a ConfigError naming it."""
    if not isinstance(value, Mapping) or not value:
        raise ConfigError(f"{what} must map input names to dimension lists, got {value!r}")
    shapes: InputShapes = {}
    for name, dims in value.items():
        ok = (isinstance(name, str) and name and isinstance(dims, (list, tuple)) and dims
              and all(d == BATCH_DIM or (isinstance(d, int) and not isinstance(d, bool) and d > 0) for d in dims)
              and list(dims).count(BATCH_DIM) <= 1)
        if not ok:
            raise ConfigError(
                f"{what}.{name} must be a list of positive integers with at most one {BATCH_DIM!r}, got {dims!r}"
            )
        shapes[name] = list(dims)
    return shapes


def concrete_shapes(input_shapes: Mapping[str, Sequence[int | str]], batch_size: int) -> dict[str, list[int]]:
    """The shapes for one batch size: every `bs` replaced by `batch_size`."""
    return {name: [batch_size if d == BATCH_DIM else int(d) for d in dims] for name, dims in input_shapes.items()}


@dataclass
class BenchResult:
    """Throughput measured the way ais_bench does: warm-up runs, then `loop` timed executes
    on all-zero inputs; throughput = 1000 * batch_size / mean_ms (host<->device copies excluded).
    `e2e_*` adds one batch's host->device copies (every input tensor) and device->host copies
    (every output tensor) where the backend can separate them."""

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


class Harness(abc.ABC):
    """An external benchmark harness a backend can run natively (e.g. ByteMLPerf's perf_engine on
    the IxRT backend). Obtained with `Backend.harness(name)`; each kind adds its own methods."""

    name: ClassVar[str]
    root: Path | None  # the harness's checkout (None where it is not configured)

    @abc.abstractmethod
    def check(self) -> None:
        """Raise ToolchainMissing (what is missing, how to get it, portable target) unless usable now."""


class Backend(abc.ABC):
    """A target's toolchain, built by `zoorepro.backends.get_backend` from the target's entry in
    params.yaml `targets`, parsed into the backend's `config_class`. Building one is cheap and runs
    no tool: only `check()`, the methods that do work and `versions()` do.

    Declared by every backend (class attributes, read without running anything):
    `name` (params.yaml `backend`), `precision` (what it computes in), `artifact_suffix` (the file
    compile() writes: `model_bs{bs}.{artifact_suffix}`), `compile_tool` (the tool `tool_args` go to,
    None where compile runs no tool), `can_infer` (infer() runs over input folders), `harnesses`
    (the harness names `harness()` answers)."""

    name: ClassVar[str]
    precision: ClassVar[str]
    artifact_suffix: ClassVar[str]
    config_class: ClassVar[type[BackendConfig]]
    compile_tool: ClassVar[str | None] = None
    can_infer: ClassVar[bool] = True
    harnesses: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, config: BackendConfig):
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} takes a {self.config_class.__name__}, got {type(config).__name__}; "
                            "build backends with zoorepro.backends.get_backend")
        self.config = config
        self.target = config.target

    @classmethod
    def artifact_name(cls, batch_size: int) -> str:
        """The file name compile() gives its artifact for one batch size."""
        return f"model_bs{batch_size}.{cls.artifact_suffix}"

    def harness(self, name: str) -> Harness | None:
        """The named external harness this backend runs natively, or None (see `harnesses`)."""
        return None

    @abc.abstractmethod
    def check(self) -> None:
        """Raise ToolchainMissing (tool, how to get it, portable target) unless usable now."""

    @abc.abstractmethod
    def compile(self, onnx_path: Path, out_dir: Path, batch_size: int, *,
                input_shapes: Mapping[str, Sequence[int | str]] | None = None,
                tool_args: Sequence[str] = ()) -> Path:
        """Turn a static-shape ONNX file into `out_dir/artifact_name(batch_size)`; return its path.
        `input_shapes` (`{input: [dims]}`, `bs` = the batch size) are the model's, from the caller:
        backends that build for fixed shapes need them, the others check or ignore them.
        `tool_args` are extra flags for `compile_tool` (e.g. a model's ATC op-selection flags)."""

    @abc.abstractmethod
    def infer(self, model: Path, input_dirs: list[Path], out_dir: Path, batch_size: int) -> InferResult:
        """Run the model over per-sample input folders; write `{i}_{k}.npy` into out_dir."""

    @abc.abstractmethod
    def benchmark(self, model: Path, batch_size: int, loop: int, warmup: int) -> BenchResult:
        """Time `loop` executes after `warmup` untimed ones."""

    @abc.abstractmethod
    def versions(self) -> dict:
        """Toolchain versions for provenance (e.g. CANN, driver, onnxruntime, provider)."""
