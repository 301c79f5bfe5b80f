"""ixrtexec (IXUCA SDK 4.2.0), outside the tool: its shape syntax, its two command lines, the two
result lines it prints after timing an engine, and the record of an engine's input shapes that
compile() leaves beside it (ixrtexec needs `--shapes` again to time the engine, and an engine
file does not say which shapes it was built for in a form we can read).
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from ...errors import ZooreproError
from ...fsutil import atomic_write_text, sha256sum
from ..base import BATCH_DIM, InputShapes, validate_input_shapes

SIDECAR_SUFFIX = ".inputs.json"
SIDECAR_FORMAT = 1
_FPS_LINE = re.compile(r"^fps: (\S+) with batchsize (\d+)\s*$", re.MULTILINE)
_QPS_LINE = re.compile(r"^Throughput: (\S+) qps\s*$", re.MULTILINE)


def shapes_arg(input_shapes: Mapping[str, Sequence[int | str]], batch_size: int) -> str:
    """ixrtexec's shape syntax, e.g. `image:16x3x224x224,text:100x77` (`bs` dims take the batch size)."""
    return ",".join(
        f"{name}:" + "x".join(str(batch_size if d == BATCH_DIM else d) for d in dims)
        for name, dims in input_shapes.items()
    )


def build_argv(onnx_path: Path, engine: Path, shapes: str, tool_args: Sequence[str] = ()) -> list[str]:
    """The document's engine build: min = opt = max = the run shape, so the engine serves exactly
    one batch size; the caller's extra flags last."""
    return [
        "ixrtexec", "--onnx", str(onnx_path),
        "--min_shape", shapes, "--opt_shape", shapes, "--max_shape", shapes,
        "--save_engine", str(engine), "--log_level", "error", "--plugins", "ixrt_plugin",
        "--shapes", shapes, *tool_args,
    ]


def load_argv(engine: Path, shapes: str, loop: int, warmup: int) -> list[str]:
    """The document's `ixrtexec --load_engine X --plugins ixrt_plugin --shapes ...`, with explicit
    `--iterations` and `--warmUp` (ixrtexec's defaults are 10 and 10)."""
    return [
        "ixrtexec", "--load_engine", str(engine), "--plugins", "ixrt_plugin",
        "--shapes", shapes, "--iterations", str(loop), "--warmUp", str(warmup),
    ]


# -- the engine's input-shape record -------------------------------------------------------------


def sidecar_path(engine: Path) -> Path:
    """`<engine>.inputs.json`, beside the engine."""
    engine = Path(engine)
    return engine.with_name(engine.name + SIDECAR_SUFFIX)


def write_sidecar(engine: Path, input_shapes: InputShapes, batch_size: int) -> Path:
    """Record the shapes an engine was built with (`bs` kept as the word, so benchmark() rebuilds
    `--shapes` exactly as compile() did) and the engine's sha256 (a record never serves another
    engine). Written atomically, after the engine."""
    record = {
        "format": SIDECAR_FORMAT,
        "engine": Path(engine).name,
        "engine_sha256": sha256sum(engine),
        "batch_size": batch_size,
        "input_shapes": input_shapes,
        "shapes": shapes_arg(input_shapes, batch_size),
    }
    path = sidecar_path(engine)
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    return path


def read_sidecar(engine: Path) -> InputShapes:
    """The input shapes recorded for `engine`, refusing a missing record, one for another engine
    (its sha256 differs) or a garbled one."""
    path = sidecar_path(engine)
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise ZooreproError(f"{engine} has no {path.name} beside it (compile() records the engine's input "
                            "shapes there): compile the engine again") from None
    except (OSError, ValueError) as exc:
        raise ZooreproError(f"cannot read {path}: {exc}") from None
    if not isinstance(record, dict) or record.get("format") != SIDECAR_FORMAT:
        raise ZooreproError(f"{path} is not an input-shape record of format {SIDECAR_FORMAT}")
    if record.get("engine_sha256") != sha256sum(engine):
        raise ZooreproError(f"{path} was written for another engine than {engine}: compile the engine again")
    return validate_input_shapes(record.get("input_shapes"), f"{path}: input_shapes")


# -- ixrtexec's result lines ---------------------------------------------------------------------


def _single_match(pattern: re.Pattern[str], stdout: str, line: str) -> re.Match[str]:
    """Exactly one such line: none means ixrtexec did not finish timing (or printed a profile
    instead), several mean two runs' output got mixed, and either way no number is trustworthy."""
    matches = list(pattern.finditer(stdout))
    if len(matches) != 1:
        found = "no" if not matches else f"{len(matches)}"
        raise ZooreproError(f"ixrtexec output has {found} `{line}` line(s); expected exactly one:\n{stdout[-2000:]}")
    return matches[0]


def _positive_float(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ZooreproError(f"ixrtexec printed a non-number {what}: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ZooreproError(f"ixrtexec printed {what} {text}, not a positive finite number")
    return value


def parse_ixrtexec(stdout: str) -> tuple[float, int, float]:
    """(fps, batchsize, qps) from ixrtexec's two result lines, `fps: F with batchsize B` and
    `Throughput: T qps`. ixrtexec computes F = iterations*B/elapsed and T = iterations/elapsed, so
    T counts engine executions (batches) per second; B is the first dimension of one input binding
    as ixrtexec chose it, which need not be the batch size."""
    fps = _single_match(_FPS_LINE, stdout, "fps: F with batchsize B")
    qps = _single_match(_QPS_LINE, stdout, "Throughput: T qps")
    return (_positive_float(fps.group(1), "fps"), int(fps.group(2)),
            _positive_float(qps.group(1), "throughput"))
