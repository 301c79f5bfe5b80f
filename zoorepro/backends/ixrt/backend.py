"""Iluvatar IxRT backend: the VideoBERT document's own tools (IxRT's optimizer.py, ixrtexec, and
ByteMLPerf's perf_engine with the ILUVATAR backend for accuracy).

Every command line below is one the document runs (`scripts/infer_videobert_fp16_performance.sh` and
its accuracy section), plus only what a pipeline needs on top: the batch size as a parameter instead
of the script's hard-coded BS=16, private working folders so concurrent jobs never share the files
these tools drop beside their inputs, and explicit `--iterations/--warmUp`.

Precision is fp16 on both paths: ixrtexec 4.2.0 builds fp16 when no `--precision` is given (the
document passes none), and ByteMLPerf's ILUVATAR backend builds FP32 workloads as FP16.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from zoorepro.backends.base import Backend, BenchResult, InferResult
from zoorepro.backends.ixrt.bytemlperf import (
    accuracy_summary,
    load_workload,
    parse_ixrtexec,
    read_report,
    report_path,
)
from zoorepro.config import REPO_ROOT
from zoorepro.errors import ConfigError, ToolchainMissing, ZooreproError
from zoorepro.provenance import git_state

STANDIN_MARK = "ZOOREPRO STAND-IN"
HARDWARE_TYPE = "ILUVATAR"
REPORT_PRECISION = "fp16"
DEFAULT_COREX_HOME = "/usr/local/corex"
COREX_VERSION_FILES = ("version.txt", "version", "VERSION")
BATCH_MARK = "bs"
# VideoBERT's two inputs: `image` carries the batch, `text` (100 class prompts x 77 tokens) does not.
DEFAULT_INPUT_SHAPES: dict[str, list[int | str]] = {"image": [BATCH_MARK, 3, 224, 224], "text": [100, 77]}
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
PORTABLE_HINT = (
    "or run a portable target instead: `cpu` (e.g. `snakemake results/videobert_cpu.csv`), "
    "or `cuda` where onnxruntime-gpu is installed"
)
LOG_TAIL_CHARS = 4000
# The sources the document's steps run (pinned here, it clones moving branches): iluvatar-corex-ixrt
# "release 4.2.0" for tools/optimizer, DeepSparkInference tag 25.03 for toolbox/ByteMLPerf with the
# ILUVATAR backend (upstream ByteMLPerf has none). params.yaml `targets.<t>.pins` may override.
DEFAULT_PINS = {"optimizer": "6d81ff77f084e38a64ba63bcb7f2fbd6300a68e7",
                "bytemlperf": "fdf68dc917349407d991d5dfe79276c9fdd25a67"}


def _optional_path(value: object, env: str, key: str) -> Path | None:
    """A path setting, falling back to an environment variable (how the document passes it)."""
    if value is None:
        value = os.environ.get(env) or None
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key} must be a path string, got {value!r}")
    return Path(value).expanduser()


def _input_shapes(value: object, key: str) -> dict[str, list[int | str]]:
    """`{name: [dims]}` in model input order; at most one dim per input is the word `bs` (the
    batched dim). ixrtexec's shape flags are built from this, so a wrong entry fails here."""
    if not isinstance(value, dict) or not value:
        raise ConfigError(f"{key} must map input names to dimension lists, got {value!r}")
    shapes: dict[str, list[int | str]] = {}
    for name, dims in value.items():
        ok = (isinstance(name, str) and name and isinstance(dims, list) and dims
              and all(d == BATCH_MARK or (isinstance(d, int) and not isinstance(d, bool) and d > 0) for d in dims)
              and dims.count(BATCH_MARK) <= 1)
        if not ok:
            raise ConfigError(f"{key}.{name} must be a list of positive integers with at most one {BATCH_MARK!r}, got {dims!r}")
        shapes[name] = list(dims)
    return shapes


def shapes_arg(input_shapes: dict[str, list[int | str]], batch_size: int) -> str:
    """ixrtexec's shape syntax, e.g. `image:16x3x224x224,text:100x77`."""
    return ",".join(
        f"{name}:" + "x".join(str(batch_size if d == BATCH_MARK else d) for d in dims)
        for name, dims in input_shapes.items()
    )


def _run(argv: list[str], tool: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run a vendor tool, echoing its console to ours (the step's log) and returning all of it:
    ixrtexec's result lines are parsed from it. A non-zero exit becomes one error with the tail."""
    lines: list[str] = []
    try:
        with subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, errors="replace",
        ) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                sys.stdout.write(line)
                lines.append(line)
    except OSError as exc:
        raise ToolchainMissing(f"cannot start {tool} (`{argv[0]}`): {exc}; {PORTABLE_HINT}") from None
    sys.stdout.flush()
    output = "".join(lines)
    if proc.returncode != 0:
        raise ZooreproError(f"{tool} failed (exit {proc.returncode}):\n{output[-LOG_TAIL_CHARS:]}")
    return output


def _first_line(argv: list[str]) -> str | None:
    """First non-empty output line of a command that exits 0, else None (absent tool, no flag)."""
    try:
        proc = subprocess.run(argv, check=False, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              errors="replace", timeout=120)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = [line.strip() for line in proc.stdout.splitlines() if line.strip()]
    return lines[0] if proc.returncode == 0 and lines else None


def _git_toplevel(path: Path) -> Path | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=path, capture_output=True, text=True,
                             check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return Path(out).resolve()


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


def _same_json(a: Path, b: Path) -> bool:
    """Equal JSON content (formatting aside); an unreadable file is never equal."""
    try:
        return json.loads(a.read_text()) == json.loads(b.read_text())
    except (OSError, ValueError):
        return False


class IxrtBackend(Backend):
    """optimizer.py + ixrtexec on one Iluvatar GPU (`device`), ByteMLPerf for accuracy."""

    name = "ixrt"
    precision = "fp16"

    def __init__(self, target: str, settings: dict):
        super().__init__(target, settings)
        self.optimizer = _optional_path(
            self.settings.get("optimizer"), "IXRT_OPTIMIZER", f"targets.{target}.optimizer"
        )
        self.bytemlperf_root = _optional_path(
            self.settings.get("bytemlperf_root"), "BYTEMLPERF_ROOT", f"targets.{target}.bytemlperf_root"
        )
        python = self.settings.get("python") or os.environ.get("IXRT_PYTHON") or "python3"
        if not isinstance(python, str):
            raise ConfigError(f"targets.{target}.python must be a command name or path, got {python!r}")
        # The document runs optimizer.py and perf_engine.py with `python3`: the SDK's interpreter,
        # not this project's venv (which lacks IxRT's `tensorrt` module).
        self.python = python
        self.device = self.device_setting()
        self.input_shapes = _input_shapes(
            self.settings.get("input_shapes", DEFAULT_INPUT_SHAPES), f"targets.{target}.input_shapes"
        )

    # -- availability ------------------------------------------------------------------------

    @property
    def perf_engine(self) -> Path | None:
        return self.bytemlperf_root / "general_perf" / "core" / "perf_engine.py" if self.bytemlperf_root else None

    def _optimizer_missing(self) -> str | None:
        if self.optimizer is not None and self.optimizer.is_file():
            return None
        where = f" ({self.optimizer} does not exist)" if self.optimizer else ""
        return f"IxRT's optimizer.py is not configured{where}: {OPTIMIZER_HOWTO.format(target=self.target)}"

    def _bytemlperf_missing(self) -> str | None:
        howto = BYTEMLPERF_HOWTO.format(target=self.target)
        if self.perf_engine is None or not self.perf_engine.is_file():
            where = f" ({self.perf_engine} does not exist)" if self.perf_engine else ""
            return f"ByteMLPerf's general_perf/core/perf_engine.py is not configured{where}: {howto}"
        if not (self.bytemlperf_root / "general_perf" / "backends" / HARDWARE_TYPE).is_dir():
            return f"{self.bytemlperf_root} has no general_perf/backends/{HARDWARE_TYPE}: {howto}"
        return None

    def _missing(self) -> list[str]:
        """One line per missing piece, each saying how to get it."""
        missing = []
        if shutil.which("ixrtexec") is None:
            missing.append(f"`ixrtexec` is not on PATH: {IXRTEXEC_HOWTO}")
        if shutil.which(self.python) is None:
            missing.append(f"the Python interpreter `{self.python}` is not found: {IXRTEXEC_HOWTO}, or set IXRT_PYTHON")
        return missing + [m for m in (self._optimizer_missing(), self._bytemlperf_missing()) if m]

    def check(self) -> None:
        missing = self._missing()
        if missing:
            raise ToolchainMissing(
                f"target {self.target!r} needs the Iluvatar IxRT toolchain: {'; '.join(missing)}; {PORTABLE_HINT}."
            )
        self.pin_status()

    def pin_status(self) -> dict[str, str]:
        """For the optimizer and the ByteMLPerf tree: 'verified' when they sit in a git checkout at
        the pinned commit, 'unverified' when they are not in a git checkout of their own (a copy, or
        a test's stand-in inside this project); a checkout at another commit is refused."""
        pins = {**DEFAULT_PINS, **self.settings.get("pins", {})}
        status = {}
        for key, path in (("optimizer", self.optimizer.parent if self.optimizer else None),
                          ("bytemlperf", self.bytemlperf_root)):
            state = git_state(path) if path is not None and path.is_dir() else {}
            top = _git_toplevel(path) if state.get("commit") else None
            if top is None or top == REPO_ROOT:
                status[key] = "unverified (not a git checkout)"
            elif state["commit"] != pins[key]:
                raise ZooreproError(f"{path} is a checkout at {state['commit']}, not the pinned {pins[key]}: "
                                    f"`git -C {top} checkout {pins[key]}` (or set targets.{self.target}.pins.{key})")
            else:
                status[key] = f"verified {pins[key]}"
        return status

    def _ixrtexec_env(self) -> dict[str, str]:
        """ixrtexec 4.2.0 always selects device 0 (`cudaSetDevice(0)` in its main), so the card is
        chosen by visibility: IXUCA's CUDA-compatible runtime reads CUDA_VISIBLE_DEVICES."""
        return dict(os.environ, CUDA_VISIBLE_DEVICES=str(self.device))

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
            raise ToolchainMissing(f"{missing}; {PORTABLE_HINT}.")
        out_dir.mkdir(parents=True, exist_ok=True)
        stem = onnx_path.stem
        with tempfile.TemporaryDirectory(prefix=f".optimizer_{stem}_", dir=out_dir) as work:
            copy = Path(work) / onnx_path.name
            shutil.copyfile(onnx_path, copy)
            _run([self.python, str(self.optimizer), "--onnx", str(copy), "--dump_onnx"], "optimizer.py", cwd=Path(work))
            produced = copy.with_name(f"{stem}_end.onnx")
            if not produced.is_file():
                raise ZooreproError(f"optimizer.py exited 0 but wrote no {produced.name} for {onnx_path}")
            dest = out_dir / produced.name
            os.replace(produced, dest)  # same file system: the private folder is inside out_dir
            return dest

    def _build_argv(self, onnx_path: Path, engine: Path, batch_size: int) -> list[str]:
        """The document's engine build: min = opt = max = the run shape, so the engine serves
        exactly one batch size (the script's BS, here a parameter)."""
        shapes = shapes_arg(self.input_shapes, batch_size)
        return [
            "ixrtexec", "--onnx", str(onnx_path),
            "--min_shape", shapes, "--opt_shape", shapes, "--max_shape", shapes,
            "--save_engine", str(engine), "--log_level", "error", "--plugins", "ixrt_plugin",
            "--shapes", shapes,
        ]

    def compile(self, onnx_path: Path, out_dir: Path, batch_size: int) -> Path:
        out_dir = Path(out_dir).resolve()
        optimized = self.optimize(onnx_path, out_dir)
        engine = out_dir / f"model_bs{batch_size}.engine"
        engine.unlink(missing_ok=True)
        # ixrtexec converts non-opset-11 models into `.tmp.converted_optset11.onnx` in its working
        # directory: a private one per build keeps concurrent builds apart.
        with tempfile.TemporaryDirectory(prefix=f".ixrtexec_bs{batch_size}_", dir=out_dir) as work:
            _run(self._build_argv(optimized, engine, batch_size), "ixrtexec", cwd=Path(work), env=self._ixrtexec_env())
        if not engine.is_file():
            raise ZooreproError(f"ixrtexec exited 0 but wrote no engine {engine}")
        return engine

    # -- infer -------------------------------------------------------------------------------

    def infer(self, model: Path, input_dirs: list[Path], out_dir: Path, batch_size: int) -> InferResult:
        raise ZooreproError(
            "ixrtexec has no input-folder mode (it times random inputs only); accuracy on an IxRT target "
            "runs through ByteMLPerf's perf_engine, as the document does: IxrtBackend.accuracy()"
        )

    # -- benchmark ---------------------------------------------------------------------------

    def benchmark(self, model: Path, batch_size: int, loop: int, warmup: int) -> BenchResult:
        """The document's `ixrtexec --load_engine X --plugins ixrt_plugin --shapes ...` with explicit
        `--iterations loop --warmUp warmup` (ixrtexec's defaults are 10 and 10). ixrtexec times the
        whole loop once (on random float / all-ones integer inputs already on the device), so there
        are no per-run times: times_ms is empty and median/p99 are NaN.

        `Throughput: T qps` is executions per second, so mean_ms = 1000/T per execution and
        throughput = batch_size*T samples/s. ixrtexec's own `fps` multiplies T by the first dimension
        of the *last* input binding (4.2.0), which for VideoBERT is `text`'s 100, not the batch; it
        is kept in extra as printed, never used as samples/s."""
        model = Path(model).resolve()
        if not model.is_file():
            raise ZooreproError(f"engine {model} does not exist")
        argv = [
            "ixrtexec", "--load_engine", str(model), "--plugins", "ixrt_plugin",
            "--shapes", shapes_arg(self.input_shapes, batch_size),
            "--iterations", str(loop), "--warmUp", str(warmup),
        ]
        with tempfile.TemporaryDirectory(prefix="zoorepro_ixrtexec_") as work:
            output = _run(argv, "ixrtexec", cwd=Path(work), env=self._ixrtexec_env())
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

    # -- accuracy (ByteMLPerf) ---------------------------------------------------------------

    def _install_workload(self, task: str, workload_json: Path) -> None:
        """Put the shipped workload where perf_engine reads it (the document wgets it there from a
        moving branch). An existing file with other content is someone's own workload: refused,
        never overwritten."""
        workload = load_workload(workload_json)
        if workload["model"] != task:
            raise ZooreproError(f"workload {workload_json} is for model {workload['model']!r}, not task {task!r}")
        dest = self.bytemlperf_root / "general_perf" / "workloads" / f"{task}.json"
        if dest.exists():
            if not _same_json(dest, Path(workload_json)):
                raise ZooreproError(
                    f"{dest} exists with other content than {workload_json}; remove or rename it to run "
                    "the documented workload"
                )
            return
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(workload_json, dest)

    def _check_tree(self, task: str) -> None:
        """What the document copies into the ByteMLPerf tree before running perf_engine; missing
        pieces would otherwise surface as a traceback deep in perf_engine (or, for the model, as a
        silently failed optimizer call, whose exit code the ILUVATAR backend ignores)."""
        general = self.bytemlperf_root / "general_perf"
        zoo = general / "model_zoo" / f"{task}.json"
        if not zoo.is_file():
            raise ZooreproError(f"{zoo} is missing: the ByteMLPerf tree has no model-zoo entry for {task}")
        try:
            info = json.loads(zoo.read_text())
            model_path, dataset = info["model_path"], info["dataset_name"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ZooreproError(f"{zoo} has no usable model_path/dataset_name: {exc}") from None
        needed = [self.bytemlperf_root / model_path, general / "datasets" / dataset]
        absent = [str(p) for p in needed if not p.exists()]
        if absent:
            raise ZooreproError(
                f"the ByteMLPerf tree lacks {', '.join(absent)}: copy the model and dataset there as the "
                "document's accuracy steps do"
            )

    def accuracy(self, task: str, workload_json: Path, report_dir: Path) -> dict:
        """The document's accuracy run: `python3 general_perf/core/perf_engine.py --hardware_type
        ILUVATAR --task <task>` in byte_infer_perf (perf_engine chdirs there anyway). Numbers come
        from the report file it writes, not its console; the report is copied into report_dir, and
        one older than this run is refused. perf_engine also runs the workload's performance part
        (the ILUVATAR backend times device cores 0 and 1 itself and sums their QPS; `device` does not
        apply), which lands in `performance` as written."""
        self.check()
        self._install_workload(task, Path(workload_json))
        self._check_tree(task)
        report = report_path(self.bytemlperf_root, HARDWARE_TYPE, task, REPORT_PRECISION)
        before = report.stat().st_mtime_ns if report.exists() else None
        _run(
            [self.python, str(self.perf_engine), "--hardware_type", HARDWARE_TYPE, "--task", task],
            "perf_engine.py", cwd=self.bytemlperf_root,
        )
        if not report.is_file() or report.stat().st_mtime_ns == before:
            raise ZooreproError(f"perf_engine.py exited 0 but did not write {report}")
        summary = accuracy_summary(read_report(report))
        report_dir = Path(report_dir)
        report_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(report, report_dir / report.name)
        return summary

    # -- provenance --------------------------------------------------------------------------

    def versions(self) -> dict:
        """ixrtexec 4.2.0 has no --version flag (then None); the stand-in's answer marks runs made
        with it. The ByteMLPerf commit is the checkout's, DeepSparkInference's when the toolbox copy
        is used."""
        ixrtexec_line = _first_line(["ixrtexec", "--version"]) if shutil.which("ixrtexec") else None
        bytemlperf_git = git_state(self.bytemlperf_root) if self.bytemlperf_root and self.bytemlperf_root.is_dir() else {}
        optimizer_git = git_state(self.optimizer.parent) if self.optimizer and self.optimizer.is_file() else {}
        return {
            "backend": self.name,
            "device": self.device,
            "ixrtexec": ixrtexec_line,
            "ixuca_sdk": _corex_version(),
            "bytemlperf_commit": bytemlperf_git.get("commit"),
            "ixrt_optimizer_commit": optimizer_git.get("commit"),
            "pins": self.pin_status(),
            "standin": STANDIN_MARK in (ixrtexec_line or ""),
        }
