"""The per-sample file layout (ais_bench's): the one place that says how samples sit on disk.

Inputs: one folder per model input, in model input order, each with `0.npy, 1.npy, ...` (leading
batch dim 1). Files pair by position after a *natural* sort (`2.npy` before `10.npy`), as
ais_bench pairs them, and each output is named after the first input file of its sample.
Outputs: `{sample}_{k}.npy`, one file per sample and output. The Ascend backend hands the folders
to ais_bench itself; the onnxruntime backend and steps that read samples use the helpers here.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import ZooreproError
from ..readers import load_npy

INPUT_SUFFIXES = (".npy", ".bin")


def natural_key(name: str) -> list[int | str]:
    """Sort key that orders digit runs by value, so `10.npy` follows `9.npy` as in ais_bench."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def list_input_files(folder: Path, suffixes: tuple[str, ...] = INPUT_SUFFIXES) -> list[Path]:
    """The files ais_bench would read from one input folder, in the order it pairs them."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ZooreproError(f"input folder {folder} does not exist")
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes]
    return sorted(files, key=lambda p: natural_key(p.name))


def list_samples(input_dirs: list[Path]) -> list[list[Path]]:
    """The `.npy` files of each input folder in pairing order, one row per sample; all folders
    must hold the same sample names."""
    columns = []
    for d in input_dirs:
        files = list_input_files(d, (".npy",))
        if not files:
            raise ZooreproError(f"input folder {d} holds no .npy files")
        columns.append(files)
    names = [p.name for p in columns[0]]
    for d, files in zip(input_dirs, columns):
        if [p.name for p in files] != names:
            raise ZooreproError(f"input folder {d} does not hold the same samples as {input_dirs[0]}")
    return [list(row) for row in zip(*columns)]


def batches(samples: list[list[Path]], batch_size: int):
    """Yield (sample_names, arrays per input, n_real) with a short last batch padded by copies of
    that batch's first sample, as ais_bench pads; outputs of padding rows are dropped by the caller."""
    for start in range(0, len(samples), batch_size):
        chunk = samples[start:start + batch_size]
        n_real = len(chunk)
        chunk = chunk + [chunk[0]] * (batch_size - n_real)
        arrays = [np.concatenate([load_npy(row[i]) for row in chunk], axis=0) for i in range(len(chunk[0]))]
        yield [row[0].name.split(".")[0] for row in chunk[:n_real]], arrays, n_real


def save_outputs(out_dir: Path, names: list[str], outputs: list[np.ndarray]) -> None:
    """Split each batched output along axis 0 into `{name}_{k}.npy`, one file per sample."""
    for k, out in enumerate(outputs):
        for j, name in enumerate(names):
            np.save(out_dir / f"{name}_{k}.npy", out[j:j + 1])
