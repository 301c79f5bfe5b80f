"""Stand-in `python -m ais_bench`: reproduces the documented command line and output formats of
the ais_bench its era imitates (standin_versions.py; `current` by default).

What it mirrors from the real tool: the flags the project uses with their real short forms (-m,
-i, -o, -l, -d; there is no --om or -r), one input folder per model input (natural-sorted
.npy/.bin), several per-sample files concatenated into one model batch with a short last batch
padded by that batch's first file, outputs named `<first input file of the sample>_<k>.<fmt>`,
`<output>/<dirname>` or a timestamp folder, the sibling `_summary.json` with a per-sample
`filesinfo`, warm-up then `loop` timed executes per batch, one H2D entry per input tensor and one
D2H entry per output tensor for each batch, zero inputs without --input, nothing written without
--output, and the 2023 throughput line `throughput 1000*batchsize.mean(..)/NPU_compute_time.mean(..)`.
In the `current` era it also enforces the 2024-02 path checks (path_checks.py) and creates
folders 0o750 and files 0o640; the `2023` era does neither (folders 0o755).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime
from standin_om import MARK, StandinError, read_om
from standin_versions import era

from ais_bench import path_checks

PURE_INFER_NAME = "pure_infer_data"
SUFFIXES = (".npy", ".bin")


@dataclass(frozen=True)
class InputDesc:
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * self.dtype.itemsize


@dataclass
class Timings:
    """Per-execute compute times and per-tensor copy times, in ms, as the summary reports them."""

    compute: list[float]
    h2d: list[float]
    d2h: list[float]


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


def _nonnegative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a non-negative integer")
    return value


def _boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "t", "yes", "y"):
        return True
    if lowered in ("0", "false", "f", "no", "n"):
        return False
    raise argparse.ArgumentTypeError(f"{text} is not a boolean")


class _Parser(argparse.ArgumentParser):
    """argparse as ais_bench uses it; a refused path is reported as its checks do."""

    def refuse(self, flag: str, what: str, value: str, exc: path_checks.PathRefused) -> None:
        print(f"[ERROR] {exc}")
        print(path_checks.SOLUTION)
        self.error(f"argument {flag}: {what}:{value} is illegal. Please check.")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = _Parser(prog="ais_bench", description=f"{MARK} of ais_bench (tests only)")
    parser.add_argument("--model", "-m", required=True)
    parser.add_argument("--input", "-i")
    parser.add_argument("--output", "-o")
    parser.add_argument("--output_dirname")
    parser.add_argument("--outfmt", default="BIN", choices=["NPY", "BIN", "TXT"])
    parser.add_argument("--loop", "-l", type=_positive, default=1)
    parser.add_argument("--device", "-d", type=_nonnegative, default=0)
    parser.add_argument("--batchsize", type=_positive)
    parser.add_argument("--warmup_count", type=_nonnegative, default=1)
    parser.add_argument("--pure_data_type", default="zero", choices=["zero", "random"])
    parser.add_argument("--display_all_summary", type=_boolean, default=False)
    args = parser.parse_args(argv)
    if args.output_dirname is not None and args.output is None:
        parser.error("--output_dirname can only be used together with --output")
    if era().path_checks:
        checks = [("--model/-m", "om path", args.model, path_checks.check_om)]
        if args.input is not None:
            checks.append(("--input/-i", "input path", args.input, path_checks.check_inputs))
        if args.output is not None:
            checks.append(("--output/-o", "output path", args.output, path_checks.check_output))
        if args.output_dirname is not None:
            if os.path.isabs(args.output_dirname):
                parser.error("--output_dirname do not support abs path!")
            # ais_bench checks the bare name against the working directory, not <output>/<name>.
            checks.append(("--output_dirname", "output dirname", args.output_dirname, path_checks.check_output))
        for flag, what, value, check in checks:
            try:
                check(value)
            except path_checks.PathRefused as exc:
                parser.refuse(flag, what, value, exc)
    return args


def natural_key(name: str) -> list[int | str]:
    """ais_bench pairs files after a natural sort: 2.npy before 10.npy."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def list_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise StandinError(f"input {path} does not exist")
    files = [p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES]
    return sorted(files, key=lambda p: natural_key(p.name))


def read_input_file(path: Path, desc: InputDesc) -> np.ndarray:
    """One file's data, flat, in the model input's dtype (.npy must match it; .bin is raw)."""
    if path.suffix.lower() == ".npy":
        array = np.load(path)
        if array.dtype != desc.dtype:
            raise StandinError(f"{path} holds {array.dtype}, model input {desc.name} wants {desc.dtype}")
        return array.reshape(-1)
    return np.fromfile(path, dtype=desc.dtype)


def files_per_batch(first: np.ndarray, desc: InputDesc) -> int:
    """How many files make one model batch: tensor size over file size, as the real tool derives it."""
    if first.nbytes == 0 or desc.nbytes % first.nbytes:
        raise StandinError(f"input {desc.name}: file size {first.nbytes} B does not divide tensor size {desc.nbytes} B")
    return desc.nbytes // first.nbytes


def input_file_lists(spec: str, descs: list[InputDesc]) -> list[list[Path]]:
    paths = [Path(p) for p in spec.split(",")]
    if len(paths) != len(descs):
        raise StandinError(f"{len(paths)} inputs given, the model has {len(descs)}")
    lists = [list_files(p) for p in paths]
    counts = {len(files) for files in lists}
    if len(counts) != 1 or 0 in counts:
        raise StandinError(f"input folders must hold the same, non-zero number of files, got {sorted(counts)}")
    return lists


def group_batches(lists: list[list[Path]], per_batch: int) -> list[tuple[list[list[Path]], int]]:
    """Split per-input file lists into batches; pad a short last batch with that batch's first file
    (list_split's placeholder, replaced by files_list[0] of the chunk)."""
    total = len(lists[0])
    batches = []
    for start in range(0, total, per_batch):
        real = min(per_batch, total - start)
        batch = [files[start:start + real] + [files[start]] * (per_batch - real) for files in lists]
        batches.append((batch, real))
    return batches


def load_batch(batch: list[list[Path]], descs: list[InputDesc]) -> dict[str, np.ndarray]:
    feed = {}
    for files, desc in zip(batch, descs):
        flat = np.concatenate([read_input_file(f, desc) for f in files])
        if flat.size * desc.dtype.itemsize != desc.nbytes:
            raise StandinError(f"input {desc.name}: files give {flat.size} values, model wants {desc.shape}")
        feed[desc.name] = flat.reshape(desc.shape)
    return feed


def pure_feed(descs: list[InputDesc], kind: str) -> dict[str, np.ndarray]:
    """All-zero (the default) or random inputs for pure inference."""
    rng = np.random.default_rng()
    feed = {}
    for desc in descs:
        if kind == "zero":
            feed[desc.name] = np.zeros(desc.shape, dtype=desc.dtype)
        elif np.issubdtype(desc.dtype, np.floating):
            feed[desc.name] = rng.random(desc.shape).astype(desc.dtype)
        else:
            feed[desc.name] = rng.integers(0, 2, desc.shape).astype(desc.dtype)
    return feed


def execute(session: onnxruntime.InferenceSession, feed: dict[str, np.ndarray], loop: int,
            timings: Timings) -> list[np.ndarray]:
    """Copy each input in (one H2D entry per tensor, as MemoryHelper::Memcpy records), run `loop`
    timed executes, copy each output out (one D2H entry per tensor)."""
    device_feed = {}
    for name, array in feed.items():
        start = time.perf_counter()
        device_feed[name] = np.array(array, copy=True)
        timings.h2d.append((time.perf_counter() - start) * 1000)
    outputs: list[np.ndarray] = []
    for _ in range(loop):
        start = time.perf_counter()
        outputs = session.run(None, device_feed)
        timings.compute.append((time.perf_counter() - start) * 1000)
    host = []
    for out in outputs:
        start = time.perf_counter()
        host.append(np.array(out, copy=True))
        timings.d2h.append((time.perf_counter() - start) * 1000)
    return host


def save_array(array: np.ndarray, path_without_ext: Path, fmt: str) -> Path:
    path = path_without_ext.with_name(f"{path_without_ext.name}.{fmt.lower()}")
    mode = era().file_mode
    if mode is not None:  # ms_open(..., 0o640): an existing file is removed, the new one made with the mode
        path.unlink(missing_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))
    if fmt == "NPY":
        np.save(path, array)
    elif fmt == "BIN":
        array.tofile(path)
    else:
        np.savetxt(path, array.reshape(array.shape[0], -1) if array.ndim > 1 else array)
    return path


def save_batch(outputs: list[np.ndarray], batch: list[list[Path]], real: int, prefix: Path, fmt: str,
               first_id: int, filesinfo: dict[int, dict]) -> None:
    """Split each output along axis 0 into one piece per sample, skip the padding samples, and
    record each sample's files under its id (batch index x files per batch + j)."""
    pieces = [np.array_split(output, len(batch[0]), axis=0) for output in outputs]
    for j in range(real):
        stem = batch[0][j].name.split(".")[0]
        outfiles = [str(save_array(pieces[k][j], prefix / f"{stem}_{k}", fmt)) for k in range(len(outputs))]
        filesinfo[first_id + j] = {"infiles": [str(files[j]) for files in batch], "outfiles": outfiles}


def stats(values: list[float]) -> dict:
    if not values:
        return {"min": 0.0, "max": 0.0, "mean": 0.0, "median": 0.0, "percentile(99%)": 0.0, "count": 0}
    return {
        "min": min(values),
        "max": max(values),
        "mean": statistics.fmean(values),
        "median": statistics.median(values),
        "percentile(99%)": float(np.percentile(values, 99)),
        "count": len(values),
    }


def _line(name: str, block: dict) -> str:
    return (f"[INFO] {name} (ms): min = {block['min']}, max = {block['max']}, mean = {block['mean']}, "
            f"median = {block['median']}, percentile(99%) = {block['percentile(99%)']}")


def report(timings: Timings, batchsize: int, display_all: bool) -> dict:
    """Print the documented performance summary and return its JSON fields."""
    compute, h2d, d2h = stats(timings.compute), stats(timings.h2d), stats(timings.d2h)
    throughput = 1000 * batchsize / compute["mean"] if compute["mean"] else 0
    print("[INFO] -----------------Performance Summary------------------")
    if display_all:
        print(_line("H2D_latency", h2d))
    print(_line("NPU_compute_time", compute))
    if display_all:
        print(_line("D2H_latency", d2h))
    print(f"[INFO] throughput 1000*batchsize.mean({batchsize})/NPU_compute_time.mean({compute['mean']}): {throughput}")
    print("[INFO] ------------------------------------------------------")
    return {"NPU_compute_time": compute, "H2D_latency": h2d, "D2H_latency": d2h, "throughput": throughput,
            "npu_compute_time_list": timings.compute}


def output_prefix(args: argparse.Namespace) -> Path | None:
    if args.output is None:
        return None
    prefix = Path(args.output) / (args.output_dirname or time.strftime("%Y_%m_%d-%H_%M_%S"))
    if prefix.exists() and era().path_checks:
        try:
            path_checks.check_prefix(str(prefix))
        except path_checks.PathRefused as exc:
            raise StandinError(str(exc)) from None
    path_checks.makedirs_safe(prefix, era().dir_mode)
    print(f"[INFO] output path:{prefix}")
    return prefix


def run(args: argparse.Namespace) -> None:
    meta, onnx_bytes = read_om(Path(args.model))
    print(f"[WARNING] {MARK} of ais_bench {era().ais_bench}: onnxruntime on the CPU (device {args.device} "
          "ignored); not an Ascend measurement")
    session = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    descs = [InputDesc(d["name"], tuple(d["shape"]), np.dtype(d["dtype"])) for d in meta["inputs"]]
    batchsize = args.batchsize or int(meta["batch_size"])
    prefix = output_prefix(args)
    timings = Timings([], [], [])
    filesinfo: dict[int, dict] = {}
    if args.input is None:
        feed = pure_feed(descs, args.pure_data_type)
        for _ in range(args.warmup_count):
            execute(session, feed, 1, Timings([], [], []))
        outputs = execute(session, feed, args.loop, timings)
        if prefix is not None:
            outfiles = [str(save_array(out, prefix / f"{PURE_INFER_NAME}_{k}", args.outfmt))
                        for k, out in enumerate(outputs)]
            filesinfo[0] = {"infiles": [PURE_INFER_NAME] * len(descs), "outfiles": outfiles}
    else:
        lists = input_file_lists(args.input, descs)
        per_batch = files_per_batch(read_input_file(lists[0][0], descs[0]), descs[0])
        batches = group_batches(lists, per_batch)
        warm_feed = load_batch(batches[0][0], descs)
        for _ in range(args.warmup_count):
            execute(session, warm_feed, 1, Timings([], [], []))
        for index, (batch, real) in enumerate(batches):
            outputs = execute(session, load_batch(batch, descs), args.loop, timings)
            if prefix is not None:
                save_batch(outputs, batch, real, prefix, args.outfmt, index * per_batch, filesinfo)
    fields = report(timings, batchsize, args.display_all_summary)
    if prefix is not None:
        summary = {"filesinfo": filesinfo, "args": sys.argv, **fields, "pid": os.getpid(), "standin": meta["standin"]}
        summary_file = Path(f"{prefix}_summary.json")
        if era().file_mode is not None:
            summary_file.unlink(missing_ok=True)
            os.close(os.open(summary_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, era().file_mode))
        summary_file.write_text(json.dumps(summary))


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except StandinError as exc:
        print(f"[ERROR] {MARK}: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
