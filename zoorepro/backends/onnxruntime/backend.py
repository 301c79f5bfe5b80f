"""onnxruntime backend: the portable targets (cpu, and cuda where onnxruntime-gpu is present).

It writes outputs in ais_bench's layout and benchmarks with ais_bench's method, so its numbers
line up with the vendor path: warm-up runs, then `loop` timed runs on all-zero inputs,
throughput = 1000 * batch_size / mean_ms. The compute timing binds inputs and outputs on the
device (no host<->device copies, as ais_bench's NPU_compute_time); the end-to-end figure feeds
numpy arrays and fetches numpy outputs, so it includes the copies.
"""
from __future__ import annotations

import shutil
import statistics
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ...errors import ShapeMismatchError, ZooreproError
from ...fsutil import writing_file
from ...measurements import latency_stats
from ...progress import progress
from ...readers import CorruptArtifact
from ..base import (
    Backend,
    BenchResult,
    InferResult,
    concrete_shapes,
    validate_input_shapes,
)
from ..sample_layout import batches, list_samples, save_outputs
from ..tools import toolchain_missing
from .config import OnnxRuntimeConfig

_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(bool)": np.bool_,
           "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(double)": np.float64}


def session_options():
    """The session options both our harness and the bare benchmark loop use."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return opts


def zero_feeds(session) -> dict[str, np.ndarray]:
    """All-zero inputs of the model's static shapes (ais_bench's pure_data_type=zero)."""
    feeds = {}
    for inp in session.get_inputs():
        if any(not isinstance(d, int) for d in inp.shape):
            raise ZooreproError(f"input {inp.name} has a dynamic shape {inp.shape}: benchmark a static model")
        feeds[inp.name] = np.zeros(inp.shape, dtype=_DTYPES[inp.type])
    return feeds


class OnnxRuntimeBackend(Backend):
    """onnxruntime with one execution provider (`provider`); the ONNX file is the artifact."""

    name = "onnxruntime"
    precision = "fp32"
    artifact_suffix = "onnx"
    config_class = OnnxRuntimeConfig
    config: OnnxRuntimeConfig

    @property
    def provider(self) -> str:
        return self.config.provider

    def check(self) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise toolchain_missing(self.target, "onnxruntime", [
                "onnxruntime is not installed: run `make env` (it installs envs/requirements.lock)"]) from None
        if self.provider not in ort.get_available_providers():
            lacks = (f"this onnxruntime ({ort.__version__}, providers {ort.get_available_providers()}) lacks it: "
                     "install onnxruntime-gpu matching your CUDA in place of onnxruntime")
            raise toolchain_missing(self.target, f"onnxruntime's {self.provider}", [lacks])

    def session(self, model: Path):
        import onnxruntime as ort
        self.check()
        try:
            return ort.InferenceSession(str(model), session_options(), providers=[self.provider])
        except (ort.capi.onnxruntime_pybind11_state.InvalidProtobuf, ort.capi.onnxruntime_pybind11_state.Fail,
                ort.capi.onnxruntime_pybind11_state.NoSuchFile) as exc:
            raise CorruptArtifact(f"{model}: onnxruntime cannot load it ({exc})") from None

    def compile(self, onnx_path: Path, out_dir: Path, batch_size: int, *,
                input_shapes: Mapping[str, Sequence[int | str]] | None = None,
                tool_args: Sequence[str] = ()) -> Path:
        """onnxruntime runs the ONNX itself: check it loads with the requested static batch (and,
        when given, exactly the caller's input shapes), then place it as the target's model file.
        There is no compile tool, so tool_args must be empty."""
        if tool_args:
            raise ZooreproError(f"target {self.target!r} compiles with no tool: tool_args {list(tool_args)} "
                                "would be ignored")
        shapes = validate_input_shapes(input_shapes) if input_shapes is not None else None
        sess = self.session(onnx_path)
        for inp in sess.get_inputs():
            if inp.shape[0] != batch_size:
                raise ZooreproError(f"{onnx_path}: input {inp.name} has batch {inp.shape[0]}, expected {batch_size}")
        if shapes is not None:
            have = {inp.name: list(inp.shape) for inp in sess.get_inputs()}
            want = concrete_shapes(shapes, batch_size)
            if have != want:
                raise ShapeMismatchError(f"{onnx_path}: input shapes {have} differ from the expected {want}")
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        dest = out_dir / self.artifact_name(batch_size)
        with writing_file(dest) as tmp:
            shutil.copyfile(onnx_path, tmp)
        return dest

    def infer(self, model: Path, input_dirs: list[Path], out_dir: Path, batch_size: int) -> InferResult:
        sess = self.session(model)
        names = [i.name for i in sess.get_inputs()]
        if len(names) != len(input_dirs):
            raise ZooreproError(f"model has {len(names)} inputs {names}, got {len(input_dirs)} input folders")
        samples = list_samples(input_dirs)
        out_dir.mkdir(parents=True, exist_ok=True)
        times = []
        n_batches = -(-len(samples) // batch_size)
        for sample_names, arrays, _ in progress(batches(samples, batch_size), total=n_batches,
                                                desc=f"infer {Path(model).name}", unit="batches"):
            start = time.perf_counter()
            outputs = sess.run(None, dict(zip(names, arrays)))
            times.append((time.perf_counter() - start) * 1000)
            save_outputs(out_dir, sample_names, outputs)
        return InferResult(out_dir, len(samples), {"batch_size": batch_size, "batches": len(times),
                                                   "mean_ms": statistics.fmean(times)})

    def benchmark(self, model: Path, batch_size: int, loop: int, warmup: int) -> BenchResult:
        import onnxruntime as ort
        sess = self.session(model)
        feeds = zero_feeds(sess)
        device = "cuda" if self.provider == "CUDAExecutionProvider" else "cpu"
        binding = sess.io_binding()
        for name, arr in feeds.items():
            binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(arr, device, 0))
        for out in sess.get_outputs():
            binding.bind_output(out.name, device)
        for _ in range(warmup):
            sess.run_with_iobinding(binding)
        times = self._timed(lambda: sess.run_with_iobinding(binding), loop, f"benchmark bs{batch_size}")
        # The end-to-end figure comes second, after its own warm-up, so that the compute figure
        # is taken exactly as ais_bench takes it (warm-up, then the timed loop, nothing between).
        for _ in range(warmup):
            sess.run(None, feeds)
        e2e = self._timed(lambda: sess.run(None, feeds), loop, f"benchmark bs{batch_size} with copies")
        stats, e2e_mean = latency_stats(times), latency_stats(e2e).mean_ms
        return BenchResult(batch_size=batch_size, loop=loop, warmup=warmup, times_ms=times, mean_ms=stats.mean_ms,
                           median_ms=stats.median_ms, p99_ms=stats.p99_ms,
                           throughput=1000 * batch_size / stats.mean_ms, e2e_mean_ms=e2e_mean,
                           e2e_throughput=1000 * batch_size / e2e_mean)

    @staticmethod
    def _timed(run, loop: int, desc: str) -> list[float]:
        """Milliseconds of each of `loop` calls (progress is counted outside the timed call)."""
        times = []
        for _ in progress(range(loop), desc=desc, unit="runs"):
            start = time.perf_counter()
            run()
            times.append((time.perf_counter() - start) * 1000)
        return times

    def versions(self) -> dict:
        import onnxruntime as ort
        return {"onnxruntime": ort.__version__, "provider": self.provider,
                "available_providers": ort.get_available_providers()}
