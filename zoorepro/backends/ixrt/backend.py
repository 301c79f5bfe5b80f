"""Iluvatar IxRT backend: the document's own tools (IxRT's optimizer.py, ixrtexec, and ByteMLPerf's
perf_engine with the ILUVATAR backend for accuracy, offered as the `bytemlperf` harness).

Every command line below is one the document runs (its fp16 performance script and its accuracy
section), plus only what a pipeline needs on top: the batch size as a parameter instead of the
script's hard-coded BS, private working folders so concurrent jobs never share the files these
tools drop beside their inputs, and explicit `--iterations/--warmUp`. The model's input shapes
come from the caller (compile's `input_shapes`) and are recorded beside the engine.

Precision is fp16 on both paths: ixrtexec 4.2.0 builds fp16 when no `--precision` is given (the
document passes none), and ByteMLPerf's ILUVATAR backend builds FP32 workloads as FP16.
"""
from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from ...errors import ConfigError, ZooreproError
from ...provenance import git_state
from ..base import Backend, BenchResult, InferResult, validate_input_shapes
from ..tools import argv_words, checkout_pin, first_line, run_tool, toolchain_missing
from .bytemlperf import ByteMLPerfHarness
from .config import IxrtConfig
from .ixrtexec import (
    build_argv,
    load_argv,
    parse_ixrtexec,
    read_sidecar,
    shapes_arg,
    sidecar_path,
    write_sidecar,
)

STANDIN_MARK = "ZOOREPRO STAND-IN"
HARDWARE_TYPE = "ILUVATAR"
REPORT_PRECISION = "fp16"
DEFAULT_COREX_HOME = "/usr/local/corex"
COREX_VERSION_FILES = ("version.txt", "version", "VERSION")
IXRTEXEC_HOWTO = "install the Iluvatar IXUCA SDK 4.2.0 (it provides `ixrtexec` and IxRT's `tensorrt`-compatible Python API)"
OPTIMIZER_HOWTO = (
    "`git clone https://gitee.com/deep-spark/iluvatar-corex-ixrt.git --depth=1` and set "
    "targets.{target}.optimizer or IXRT_OPTIMIZER to its tools/optimizer/optimizer.py"
)
BYTEMLPERF_HOWTO = (
    "clone DeepSparkInference (its toolbox/ByteMLPerf carries the ILUVATAR backend; upstream "
    "bytedance/ByteMLPerf has none) and set targets.{target}.bytemlperf_root or BYTEMLPERF_ROOT to "
    "its toolbox/ByteMLPerf/byte_infer_perf"
)
TOOLCHAIN = "the Iluvatar IxRT toolchain"


def _corex_version() -> str | None:
    """The IXUCA SDK version from a version file in the CoreX install (COREX_HOME moves it; tests
    point it at a tmp dir). The file's name is not documented, so the usual names are tried."""
    home = Path(os.environ.get("COREX_HOME", DEFAULT_COREX_HOME))
    for name in COREX_VERSION_FILES:
        path = home / name
        if path.is_file():
            lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
            if lines:
                return lines[0]
    return None


class IxrtBackend(Backend):
    """optimizer.py + ixrtexec on one Iluvatar GPU (`device`), ByteMLPerf for accuracy."""

    name = "ixrt"
    precision = "fp16"
    artifact_suffix = "engine"
    config_class = IxrtConfig
    compile_tool = "ixrtexec"
    can_infer = False  # ixrtexec has no input-folder mode: accuracy runs through the bytemlperf harness
    harnesses = frozenset({"bytemlperf"})
    config: IxrtConfig

    # -- capabilities ------------------------------------------------------------------------

    def harness(self, name: str) -> ByteMLPerfHarness | None:
        """`bytemlperf`: ByteMLPerf's perf_engine with the ILUVATAR backend, in `bytemlperf_root`."""
        if name != "bytemlperf":
            return None
        return ByteMLPerfHarness(
            root=self.config.bytemlperf_root, python=self.config.python, hardware_type=HARDWARE_TYPE,
            precision=REPORT_PRECISION, target=self.target, pin=self.config.pins["bytemlperf"],
            pin_key=f"targets.{self.target}.pins.bytemlperf", howto=BYTEMLPERF_HOWTO.format(target=self.target),
        )

    # -- availability ------------------------------------------------------------------------

    def _optimizer_missing(self) -> str | None:
        optimizer = self.config.optimizer
        if optimizer is not None and optimizer.is_file():
            return None
        where = f" ({optimizer} does not exist)" if optimizer else ""
        return f"IxRT's optimizer.py is not configured{where}: {OPTIMIZER_HOWTO.format(target=self.target)}"

    def _missing(self) -> list[str]:
        """One line per missing piece, each saying how to get it."""
        missing = []
        if shutil.which("ixrtexec") is None:
            missing.append(f"`ixrtexec` is not on PATH: {IXRTEXEC_HOWTO}")
        if shutil.which(self.config.python) is None:
            missing.append(f"the Python interpreter `{self.config.python}` is not found: {IXRTEXEC_HOWTO}, "
                           "or set IXRT_PYTHON")
        harness = self.harness("bytemlperf")
        assert harness is not None
        return missing + [m for m in (self._optimizer_missing(), harness.missing()) if m]

    def check(self) -> None:
        missing = self._missing()
        if missing:
            raise toolchain_missing(self.target, TOOLCHAIN, missing)
        self.pin_status()

    def pin_status(self) -> dict[str, str]:
        """For the optimizer and the ByteMLPerf tree: 'verified' when they sit in a git checkout at
        the pinned commit, 'unverified' when they are not in a git checkout of their own (a copy, or
        a test's stand-in inside this project); a checkout at another commit is refused."""
        optimizer = self.config.optimizer
        harness = self.harness("bytemlperf")
        assert harness is not None
        return {
            "optimizer": checkout_pin(optimizer.parent if optimizer else None, self.config.pins["optimizer"],
                                      f"targets.{self.target}.pins.optimizer"),
            "bytemlperf": harness.pin_status(),
        }

    def _ixrtexec_env(self) -> dict[str, str]:
        """ixrtexec 4.2.0 always selects device 0 (`cudaSetDevice(0)` in its main), so the card is
        chosen by visibility: IXUCA's CUDA-compatible runtime reads CUDA_VISIBLE_DEVICES."""
        return dict(os.environ, CUDA_VISIBLE_DEVICES=str(self.config.device))

    # -- compile -----------------------------------------------------------------------------

    def optimize(self, onnx_path: Path, out_dir: Path) -> Path:
        """The document's `python3 ${OPTIMIER_FILE} --onnx ${ORIGIN_ONNX} --dump_onnx`. optimizer.py
        writes `<stem>_sim.onnx`, `<stem>_end.onnx` (and more) beside its input, so it runs on a copy
        in a private folder; only `<stem>_end.onnx` (the fused graph ixrtexec builds) is moved into
        out_dir, atomically, so concurrent compiles of other batch sizes never see half a file."""
        onnx_path, out_dir = Path(onnx_path).resolve(), Path(out_dir).resolve()
        if not onnx_path.is_file():
            raise ZooreproError(f"ONNX model {onnx_path} does not exist")
        if onnx_path.suffix != ".onnx":
            raise ZooreproError(f"{onnx_path}: optimizer.py derives its output names by cutting `.onnx`; rename the file")
        missing = self._optimizer_missing()
        if missing:
            raise toolchain_missing(self.target, TOOLCHAIN, [missing])
        out_dir.mkdir(parents=True, exist_ok=True)
        stem = onnx_path.stem
        with tempfile.TemporaryDirectory(prefix=f".optimizer_{stem}_", dir=out_dir) as work:
            copy = Path(work) / onnx_path.name
            shutil.copyfile(onnx_path, copy)
            run_tool([self.config.python, str(self.config.optimizer), "--onnx", str(copy), "--dump_onnx"],
                     "optimizer.py", cwd=Path(work))
            produced = copy.with_name(f"{stem}_end.onnx")
            if not produced.is_file():
                raise ZooreproError(f"optimizer.py exited 0 but wrote no {produced.name} for {onnx_path}")
            dest = out_dir / produced.name
            os.replace(produced, dest)  # same file system: the private folder is inside out_dir
            return dest

    def compile(self, onnx_path: Path, out_dir: Path, batch_size: int, *,
                input_shapes: Mapping[str, Sequence[int | str]] | None = None,
                tool_args: Sequence[str] = ()) -> Path:
        """optimizer.py, then the document's engine build for exactly this batch size (min = opt =
        max = the run shape). `input_shapes` (`{input: [dims]}` in model input order, `bs` = the
        batch size) are required: ixrtexec's shape flags are built from them, and they are recorded
        in `<engine>.inputs.json` for benchmark(). `tool_args` are extra ixrtexec build flags."""
        if input_shapes is None:
            raise ConfigError(f"target {self.target!r} builds IxRT engines for fixed input shapes: pass "
                              "input_shapes ({input: [dims]}, 'bs' for the batched dim) to compile")
        shapes = validate_input_shapes(input_shapes)
        tool_args = argv_words(tool_args)
        out_dir = Path(out_dir).resolve()
        engine = out_dir / self.artifact_name(batch_size)
        engine.unlink(missing_ok=True)
        sidecar_path(engine).unlink(missing_ok=True)
        optimized = self.optimize(onnx_path, out_dir)
        # ixrtexec converts non-opset-11 models into `.tmp.converted_optset11.onnx` in its working
        # directory: a private one per build keeps concurrent builds apart.
        with tempfile.TemporaryDirectory(prefix=f".ixrtexec_bs{batch_size}_", dir=out_dir) as work:
            argv = build_argv(optimized, engine, shapes_arg(shapes, batch_size), tool_args)
            run_tool(argv, "ixrtexec", cwd=Path(work), env=self._ixrtexec_env())
        if not engine.is_file():
            raise ZooreproError(f"ixrtexec exited 0 but wrote no engine {engine}")
        write_sidecar(engine, shapes, batch_size)
        return engine

    # -- infer -------------------------------------------------------------------------------

    def infer(self, model: Path, input_dirs: list[Path], out_dir: Path, batch_size: int) -> InferResult:
        raise ZooreproError(
            "ixrtexec has no input-folder mode (it times random inputs only); accuracy on an IxRT target "
            "runs through ByteMLPerf's perf_engine, as the document does: backend.harness('bytemlperf').accuracy()"
        )

    # -- benchmark ---------------------------------------------------------------------------

    def benchmark(self, model: Path, batch_size: int, loop: int, warmup: int) -> BenchResult:
        """The document's `ixrtexec --load_engine X --plugins ixrt_plugin --shapes ...` with explicit
        `--iterations loop --warmUp warmup`, the shapes rebuilt from the record compile() left beside
        the engine. ixrtexec times the whole loop once (on random float / all-ones integer inputs
        already on the device), so there are no per-run times: times_ms is empty and median/p99 are
        NaN.

        `Throughput: T qps` is executions per second, so mean_ms = 1000/T per execution and
        throughput = batch_size*T samples/s. ixrtexec's own `fps` multiplies T by the first dimension
        of the *last* input binding (4.2.0), which need not be the batch (a model whose last input
        is an unbatched table, say); it is kept in extra as printed, never used as samples/s."""
        model = Path(model).resolve()
        if not model.is_file():
            raise ZooreproError(f"engine {model} does not exist")
        argv = load_argv(model, shapes_arg(read_sidecar(model), batch_size), loop, warmup)
        with tempfile.TemporaryDirectory(prefix="zoorepro_ixrtexec_") as work:
            output = run_tool(argv, "ixrtexec", cwd=Path(work), env=self._ixrtexec_env())
        fps, tool_bs, qps = parse_ixrtexec(output)
        mean_ms = 1000.0 / qps
        return BenchResult(
            batch_size=batch_size,
            loop=loop,
            warmup=warmup,
            times_ms=[],
            mean_ms=mean_ms,
            median_ms=math.nan,
            p99_ms=math.nan,
            throughput=batch_size * qps,
            extra={"qps_batches_per_s": qps, "tool_fps": fps, "tool_batchsize": tool_bs},
        )

    # -- provenance --------------------------------------------------------------------------

    def versions(self) -> dict:
        """ixrtexec 4.2.0 has no --version flag (then None); the stand-in's answer marks runs made
        with it. The ByteMLPerf commit is the checkout's, DeepSparkInference's when the toolbox copy
        is used."""
        ixrtexec_line = first_line(["ixrtexec", "--version"])
        root, optimizer = self.config.bytemlperf_root, self.config.optimizer
        bytemlperf_git = git_state(root) if root and root.is_dir() else {}
        optimizer_git = git_state(optimizer.parent) if optimizer and optimizer.is_file() else {}
        return {
            "backend": self.name,
            "device": self.config.device,
            "ixrtexec": ixrtexec_line,
            "ixuca_sdk": _corex_version(),
            "bytemlperf_commit": bytemlperf_git.get("commit"),
            "ixrt_optimizer_commit": optimizer_git.get("commit"),
            "pins": self.pin_status(),
            "standin": STANDIN_MARK in (ixrtexec_line or ""),
        }
