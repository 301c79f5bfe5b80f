"""Ascend NPU backend: the document's own tools and flags (ATC to compile, ais_bench to run and time).

Every command line below is the one the document prints, plus only what a pipeline needs on top:
a batch size, a job-specific output folder name (so concurrent jobs never share ais_bench's
timestamp folder) and a summary JSON to read numbers from instead of the console. ATC gets the
document's generic flags; flags that belong to one model (op selection, say) come from the caller
as `tool_args`, then the target's `atc_extra`.

What current tools demand and this backend does for them:
- ais_bench (since 2024-02) refuses an existing `--output` folder (and `--output_dirname` target)
  with any of the mode bits 0o027 set (0o755 fails, 0o750 passes), and an `.om` or input file that
  is a symlink or group/other-writable: the output folder is set to 0o750 before every run, and a
  model that would be refused (a DVC symlink, say) is handed over as a private real copy.
- ATC accepts only the ONNX opsets its CANN release supports: the model's opset is checked against
  cann.py's table before ATC runs.
"""
from __future__ import annotations

import importlib.metadata
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from ...errors import ZooreproError
from ..base import Backend, BenchResult, InferResult, validate_input_shapes
from ..sample_layout import list_input_files
from ..tools import (
    PROBE_TIMEOUT_S,
    argv_words,
    python_module_available,
    run_tool,
    tail,
    toolchain_missing,
)
from .ais_bench import read_summary, summary_path, summary_times
from .cann import ascend_home, check_opset, key_value, toolkit_version
from .config import AscendConfig

# ais_bench (2024-02 on) refuses output folders above this mode and models writable by others.
AIS_BENCH_OUTPUT_MODE = 0o750
AIS_BENCH_MODEL_MODE = 0o640
STANDIN_MARK = "ZOOREPRO STAND-IN"
CANN_HOWTO = (
    "install the Ascend CANN toolkit matching the NPU driver and "
    "`source /usr/local/Ascend/ascend-toolkit/set_env.sh`"
)
AIS_BENCH_HOWTO = (
    "build the aclruntime and ais_bench wheels from Ascend/tools ais-bench_workload/tool/ais_bench "
    "(`pip3 wheel ./backend/` and `pip3 wheel ./` there) and pip install both"
)


def _onnx_opset(path: Path) -> int:
    """The model's default-domain (ai.onnx) opset, read without its external data."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - any parse failure names the file
        raise ZooreproError(f"cannot read ONNX model {path}: {exc}") from None
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    raise ZooreproError(f"ONNX model {path} imports no default-domain (ai.onnx) opset")


def _console(argv: Sequence[str]) -> str:
    """All a probe command prints, whatever its exit code ('' when it cannot run)."""
    try:
        proc = subprocess.run([str(a) for a in argv], check=False, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              errors="replace", timeout=PROBE_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        return ""
    return proc.stdout


def ais_bench_output_folder(folder: Path) -> Path:
    """Create `folder` (and parents) and set it to 0o750, the most ais_bench accepts."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        folder.chmod(AIS_BENCH_OUTPUT_MODE)
    except OSError as exc:
        raise ZooreproError(f"cannot set {folder} to mode 0o750 as ais_bench requires: {exc}") from None
    return folder


def ais_bench_model(model: Path, scratch: Path) -> Path:
    """`model` itself when ais_bench accepts it (a real file, not group/other-writable), else a
    private real copy in `scratch` (DVC's symlink cache, a umask 002 checkout)."""
    if not model.is_file():
        raise ZooreproError(f"model {model} does not exist (or is not a file)")
    if not model.is_symlink() and not model.stat().st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return model
    copy = scratch / model.name
    shutil.copyfile(model, copy)
    copy.chmod(AIS_BENCH_MODEL_MODE)
    print(f"[zoorepro] {model} is a symlink or writable by others, which ais_bench refuses: running a private "
          f"copy {copy}", flush=True)
    return copy


def _dist_version(name: str) -> str | None:
    """Installed distribution version, None when the package has no metadata (or is absent)."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


class AscendBackend(Backend):
    """ATC + ais_bench on an Ascend NPU (chip named by `soc_version`, card by `device`)."""

    name = "ascend"
    precision = "fp16"  # ATC's default --precision_mode is force_fp16
    artifact_suffix = "om"
    config_class = AscendConfig
    compile_tool = "atc"
    config: AscendConfig

    # -- availability ------------------------------------------------------------------------

    def _ais_bench_available(self) -> bool:
        """`python -m mod` commands are probed in that python (it sees PYTHONPATH as the real run
        will); any other command only needs its program on PATH."""
        argv = self.config.ais_bench
        if len(argv) == 3 and argv[1] == "-m":
            return python_module_available(argv[0], argv[2])
        return shutil.which(argv[0]) is not None

    def check(self) -> None:
        missing = []
        if shutil.which("atc") is None:
            missing.append(f"`atc` (CANN toolkit) is not on PATH: {CANN_HOWTO}")
        if not self._ais_bench_available():
            missing.append(f"ais_bench (`{' '.join(self.config.ais_bench)}`) is not available: {AIS_BENCH_HOWTO}")
        if missing:
            raise toolchain_missing(self.target, "the Ascend toolchain", missing)

    # -- compile -----------------------------------------------------------------------------

    def _atc_argv(self, onnx_path: Path, output: Path, tool_args: Sequence[str] = ()) -> list[str]:
        """The document's ATC command with our output name, then the caller's flags (the model's
        `tool_args`), then the target's `atc_extra`."""
        return [
            "atc",
            "--framework=5",
            f"--model={onnx_path}",
            f"--output={output}",
            "--input_format=ND",
            "--log=error",
            f"--soc_version={self.config.soc_version}",
            *tool_args,
            *self.config.atc_extra,
        ]

    @staticmethod
    def _om_files(out_dir: Path, stem: str) -> list[Path]:
        """`<stem>.om` or `<stem>_<os>_<arch>.om` (some CANN versions add the suffix); an exact
        pattern, so `model_bs1` never matches `model_bs16.om`. compile() renames to `<stem>.om`."""
        exact = out_dir / f"{stem}.om"
        return ([exact] if exact.is_file() else []) + sorted(out_dir.glob(f"{stem}_*.om"))

    def compile(self, onnx_path: Path, out_dir: Path, batch_size: int, *,
                input_shapes: Mapping[str, Sequence[int | str]] | None = None,
                tool_args: Sequence[str] = ()) -> Path:
        """`atc` on a static ONNX file into `model_bs{bs}.om`. The document's ATC command passes no
        --input_shape (ATC reads the static shapes from the model): `input_shapes` are only checked
        for form."""
        if input_shapes is not None:
            validate_input_shapes(input_shapes)
        tool_args = argv_words(tool_args)
        onnx_path, out_dir = Path(onnx_path).resolve(), Path(out_dir).resolve()
        if not onnx_path.is_file():
            raise ZooreproError(f"ONNX model {onnx_path} does not exist")
        check_opset(_onnx_opset(onnx_path), toolkit_version(), where=f"compiling {onnx_path.name}")
        out_dir.mkdir(parents=True, exist_ok=True)
        artifact = out_dir / self.artifact_name(batch_size)
        stem = artifact.stem
        for stale in self._om_files(out_dir, stem):
            stale.unlink()
        # A private working directory: ATC drops fusion_result.json and kernel_meta/ there, which
        # concurrent compiles of other batch sizes must not share.
        with tempfile.TemporaryDirectory(prefix=f".atc_{stem}_", dir=out_dir) as work:
            log = run_tool(self._atc_argv(onnx_path, out_dir / stem, tool_args), "atc", cwd=Path(work))
        if "ATC run failed" in log:
            raise ZooreproError(f"atc reported a failure for {onnx_path}:\n{tail(log)}")
        produced = self._om_files(out_dir, stem)
        if len(produced) != 1:
            raise ZooreproError(f"atc exited 0 but wrote {len(produced)} {stem}*.om files in {out_dir}:\n{tail(log)}")
        # One predictable name for the pipeline, whatever suffix this CANN version added; a real
        # file nobody else may write, as ais_bench demands of an .om.
        om = produced[0].rename(artifact)
        om.chmod(AIS_BENCH_MODEL_MODE)
        return om

    # -- infer -------------------------------------------------------------------------------

    def infer(self, model: Path, input_dirs: list[Path], out_dir: Path, batch_size: int) -> InferResult:
        model, out_dir = Path(model).absolute(), Path(out_dir).resolve()
        dirs = [Path(d).resolve() for d in input_dirs]
        if not dirs:
            raise ZooreproError("infer needs one input folder per model input, got none")
        if any("," in str(d) for d in dirs):
            raise ZooreproError(f"ais_bench splits --input at commas; rename these folders: {dirs}")
        samples = list_input_files(dirs[0])
        if not samples:
            raise ZooreproError(f"input folder {dirs[0]} holds no .npy/.bin files")
        if out_dir.exists() and any(out_dir.iterdir()):
            raise ZooreproError(f"output folder {out_dir} is not empty; remove it so old outputs cannot pass as new")
        ais_bench_output_folder(out_dir.parent)
        if out_dir.exists():
            ais_bench_output_folder(out_dir)
        summary_file = summary_path(out_dir.parent, out_dir.name)
        summary_file.unlink(missing_ok=True)
        with tempfile.TemporaryDirectory(prefix=".ais_bench_model_", dir=out_dir.parent) as scratch:
            argv = [
                *self.config.ais_bench,
                "--model", str(ais_bench_model(model, Path(scratch))),
                "--input", ",".join(str(d) for d in dirs),
                "--output", str(out_dir.parent),
                "--output_dirname", out_dir.name,
                "--outfmt", "NPY",
                "--device", str(self.config.device),
                "--batchsize", str(batch_size),
            ]
            # ais_bench checks --output_dirname's bare name against its working directory; run it
            # in --output so that what is checked is the folder it writes.
            run_tool(argv, "ais_bench", cwd=out_dir.parent)
        summary = read_summary(summary_file)
        missing = [p.name for p in samples if not (out_dir / f"{p.name.split('.')[0]}_0.npy").is_file()]
        if missing:
            raise ZooreproError(
                f"ais_bench wrote no output 0 for {len(missing)} of {len(samples)} samples in {out_dir} "
                f"(first: {', '.join(missing[:5])})"
            )
        return InferResult(out_dir=out_dir, n_samples=len(samples), summary=summary)

    # -- benchmark ---------------------------------------------------------------------------

    def benchmark(self, model: Path, batch_size: int, loop: int, warmup: int) -> BenchResult:
        model = Path(model).absolute()
        with tempfile.TemporaryDirectory(prefix="zoorepro_ais_bench_") as tmp:  # mode 0o700
            argv = [
                *self.config.ais_bench,
                "--model", str(ais_bench_model(model, Path(tmp))),
                "--loop", str(loop),
                "--device", str(self.config.device),
                "--batchsize", str(batch_size),
                "--warmup_count", str(warmup),
                "--output", tmp,
                "--output_dirname", "perf",
            ]
            run_tool(argv, "ais_bench", cwd=Path(tmp))
            summary = read_summary(summary_path(Path(tmp), "perf"))
        times = summary_times(summary)
        e2e_mean = times.e2e_mean_ms()
        return BenchResult(
            batch_size=batch_size,
            loop=loop,
            warmup=warmup,
            times_ms=times.times_ms,
            mean_ms=times.mean_ms,
            median_ms=times.median_ms,
            p99_ms=times.p99_ms,
            throughput=1000.0 * batch_size / times.mean_ms,
            e2e_mean_ms=e2e_mean,
            e2e_throughput=1000.0 * batch_size / e2e_mean if e2e_mean else None,
            extra={
                "tool_throughput": times.tool_throughput,
                **{f"{name}_{field}": (getattr(copies, field) if copies else None)
                   for name, copies in (("h2d", times.h2d), ("d2h", times.d2h))
                   for field in ("mean_ms", "count", "total_ms")},
            },
        )

    # -- provenance --------------------------------------------------------------------------

    def versions(self) -> dict:
        """CANN's version from the toolkit's files ("unknown" without them). `atc --version` is
        probed only to spot a stand-in: real ATC prints its banner there, and the current front
        end rejects the flag, so its console is never recorded as a version."""
        return {
            "backend": self.name,
            "soc_version": self.config.soc_version,
            "device": self.config.device,
            "cann": toolkit_version() or "unknown",
            "driver": key_value(ascend_home() / "driver" / "version.info", "Version"),
            "ais_bench": _dist_version("ais_bench"),
            "standin": STANDIN_MARK in _console(["atc", "--version"]),
        }
