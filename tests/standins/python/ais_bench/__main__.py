"""Stand-in `python -m ais_bench`: reproduces the documented command line and output formats.

What it mirrors from the real tool: one input folder per model input (natural-sorted .npy/.bin),
several per-sample files concatenated into one model batch with the last batch padded by the
first file, outputs named `<first input file of the sample>_<k>.<fmt>`, `<output>/<dirname>` or a
timestamp folder, the sibling `_summary.json`, warm-up then `loop` timed executes per batch,
zero inputs without --input, and nothing written without --output.
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
    """Per-execute compute times and per-batch copy times, in ms, as the summary reports them."""

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


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ais_bench", description=f"{MARK} of ais_bench (tests only)")
    parser.add_argument("--model", "--om", required=True)
    parser.add_argument("--input", "-i")
    parser.add_argument("--output", "-o")
    parser.add_argument("--output_dirname")
    parser.add_argument("--outfmt", default="BIN", choices=["NPY", "BIN", "TXT"])
    parser.add_argument("--loop", "-r", type=_positive, default=1)
    parser.add_argument("--device", type=_nonnegative, default=0)
    parser.add_argument("--batchsize", type=_positive)
    parser.add_argument("--warmup_count", type=_nonnegative, default=1)
    parser.add_argument("--pure_data_type", default="zero", choices=["zero", "random"])
    parser.add_argument("--display_all_summary", type=_boolean, nargs="?", const=True, default=False)
    args = parser.parse_args(argv)
    if args.output_dirname is not None and args.output is None:
        parser.error("--output_dirname can only be used together with --output")
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
    """Split per-input file lists into batches; pad the last with each input's first file."""
    total = len(lists[0])
    batches = []
    for start in range(0, total, per_batch):
        real = min(per_batch, total - start)
        batch = [files[start:start + real] + [files[0]] * (per_batch - real) for files in lists]
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
    """Copy inputs in (timed as H2D), run `loop` timed executes, copy outputs out (timed as D2H)."""
    start = time.perf_counter()
    device_feed = {name: np.array(array, copy=True) for name, array in feed.items()}
    timings.h2d.append((time.perf_counter() - start) * 1000)
    outputs: list[np.ndarray] = []
    for _ in range(loop):
        start = time.perf_counter()
        outputs = session.run(None, device_feed)
        timings.compute.append((time.perf_counter() - start) * 1000)
    start = time.perf_counter()
    host = [np.array(out, copy=True) for out in outputs]
    timings.d2h.append((time.perf_counter() - start) * 1000)
    return host


def save_array(array: np.ndarray, path_without_ext: Path, fmt: str) -> Path:
    path = path_without_ext.with_name(f"{path_without_ext.name}.{fmt.lower()}")
    if fmt == "NPY":
        np.save(path, array)
    elif fmt == "BIN":
        array.tofile(path)
    else:
        np.savetxt(path, array.reshape(array.shape[0], -1) if array.ndim > 1 else array)
    return path


def save_batch(outputs: list[np.ndarray], sample_files: list[Path], real: int, prefix: Path, fmt: str) -> list[str]:
    """Split each output along axis 0 into one piece per file; skip pieces that came from padding."""
    written = []
    for k, output in enumerate(outputs):
        pieces = np.array_split(output, len(sample_files), axis=0)
        for sample_file, piece in list(zip(sample_files, pieces))[:real]:
            stem = sample_file.name.split(".")[0]
            written.append(str(save_array(piece, prefix / f"{stem}_{k}", fmt)))
    return written


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
    print(f"[INFO] throughput 1000*batchsize({batchsize})/NPU_compute_time.mean({compute['mean']}): {throughput}")
    print("[INFO] ------------------------------------------------------")
    return {"NPU_compute_time": compute, "H2D_latency": h2d, "D2H_latency": d2h, "throughput": throughput,
            "npu_compute_time_list": timings.compute}


def output_prefix(args: argparse.Namespace) -> Path | None:
    if args.output is None:
        return None
    prefix = Path(args.output) / (args.output_dirname or time.strftime("%Y_%m_%d-%H_%M_%S"))
    prefix.mkdir(parents=True, exist_ok=True, mode=0o755)
    print(f"[INFO] output path:{prefix}")
    return prefix


def run(args: argparse.Namespace) -> None:
    meta, onnx_bytes = read_om(Path(args.model))
    print(f"[WARNING] {MARK}: onnxruntime on the CPU (device {args.device} ignored); not an Ascend measurement")
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
            filesinfo[0] = {"infiles": [[PURE_INFER_NAME]] * len(descs), "outfiles": outfiles}
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
                outfiles = save_batch(outputs, batch[0], real, prefix, args.outfmt)
                filesinfo[index] = {"infiles": [[str(f) for f in files] for files in batch], "outfiles": outfiles}
    fields = report(timings, batchsize, args.display_all_summary)
    if prefix is not None:
        summary = {"filesinfo": filesinfo, "args": sys.argv, **fields, "pid": os.getpid(), "standin": meta["standin"]}
        Path(f"{prefix}_summary.json").write_text(json.dumps(summary))


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
