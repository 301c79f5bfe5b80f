"""ByteMLPerf's `open_cifar` data set, the input of videobert-onnx-fp32, and its Top-1 formula.

Why our own loader: ByteMLPerf's loader is bound to its perf engine (paths relative to its own
folder, a config dict) and unpickles the CIFAR files with a plain `pickle.load`, which runs
whatever a downloaded file asks for. This one keeps its semantics and refuses foreign pickles:

* `cifar-100-python/test` only (10,000 images), labels from `labels` if present else
  `fine_labels`; `data` rows are planar RGB, reshaped to [N,3,32,32] and transposed to HWC uint8;
* class names from `meta` (`fine_label_names`), checked to be 100 but not used for inference;
* `text.npy` (the 100 class prompts, CLIP-tokenized, [100,77]) loaded once and fed unchanged
  with every batch; top-1 is the argmax over those 100 rows;
* CLIP's preprocessing per image on a PIL image (bicubic resize to 224, centre crop, RGB,
  to tensor, CLIP's mean/std), each image preprocessed once and kept in memory as upstream does
  (here on first use, so a `data_percent` run preprocesses only the images it reads);
* `rebatch(bs)` gives floor(N / bs) batches: a remainder is dropped, as upstream;
* Top-1 is good / total rounded to 5 decimals: a fraction (0.6167), not a percent.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from numpy._core.multiarray import _reconstruct
from PIL import Image
from torchvision.transforms import CenterCrop, Compose, InterpolationMode, Normalize, Resize, ToTensor

from zoorepro.errors import ZooreproError
from zoorepro.safepickle import latin1_encode, restricted_unpickler

CIFAR_DIR = "cifar-100-python"
TEST_FILE = "test"
META_FILE = "meta"
TEXT_FILE = "text.npy"
N_CLASSES = 100
PLANAR_SHAPE = (3, 32, 32)  # one `data` row: the red, green and blue planes, each row-major 32x32
INPUT_SIZE = 224
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


# Exactly the globals a CIFAR "python" pickle (dicts of strings, lists of ints, uint8 arrays) can
# name: the real files come from Python 2 and numpy 1 (`numpy.core.multiarray._reconstruct`); a
# protocol-2 pickle written today names `numpy._core.multiarray._reconstruct` and `_codecs.encode`.
# Protocol 5's `numpy._core.numeric._frombuffer` is not admitted: no CIFAR file uses it.
ADMITTED_GLOBALS: dict[tuple[str, str], object] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): latin1_encode,
}


def restricted_load(source: str | os.PathLike | BinaryIO) -> object:
    """Unpickle a CIFAR "python" file (a path or a binary stream) the way torchvision and
    ByteMLPerf read it (encoding="latin1": Python 2 strings become str, array bytes stay intact),
    admitting only the globals such a file needs."""
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as stream:
            return _load(stream, str(source))
    return _load(source, getattr(source, "name", "<stream>"))


def _load(stream: BinaryIO, name: str) -> object:
    """Run the restricted unpickler; a truncated or corrupt file is a one-line error."""
    try:
        return restricted_unpickler(stream, ADMITTED_GLOBALS, "a CIFAR file", encoding="latin1").load()
    except ZooreproError:
        raise
    except Exception as exc:  # a damaged stream fails in many ways (EOFError, UnpicklingError, ...)
        raise ZooreproError(f"{name}: not a readable CIFAR pickle ({type(exc).__name__}: {exc})") from exc


def _dict_from(path: Path) -> dict:
    """A CIFAR pickle that must hold a dict."""
    entry = restricted_load(path)
    if not isinstance(entry, dict):
        raise ZooreproError(f"{path}: expected a dict, found {type(entry).__name__}")
    return entry


def read_test_split(folder: Path) -> tuple[np.ndarray, list[int]]:
    """The `test` pickle as HWC uint8 images [N,32,32,3] and their labels (`labels` if present,
    else `fine_labels`, as upstream)."""
    path = Path(folder) / TEST_FILE
    entry = _dict_from(path)
    if "data" not in entry or not ({"labels", "fine_labels"} & set(entry)):
        raise ZooreproError(f"{path}: needs 'data' and 'labels' or 'fine_labels', has {sorted(entry)}")
    data = entry["data"]
    row = int(np.prod(PLANAR_SHAPE))
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.size % row:
        raise ZooreproError(f"{path}: 'data' must be a uint8 array of {row}-value rows")
    labels = [int(label) for label in (entry["labels"] if "labels" in entry else entry["fine_labels"])]
    images = data.reshape(-1, *PLANAR_SHAPE).transpose(0, 2, 3, 1)
    if len(labels) != len(images) or not all(0 <= label < N_CLASSES for label in labels):
        raise ZooreproError(f"{path}: {len(labels)} labels for {len(images)} images, or a label "
                            f"outside 0..{N_CLASSES - 1}")
    return images, labels


def read_class_names(folder: Path) -> list[str]:
    """`fine_label_names` from the `meta` pickle; there must be N_CLASSES of them, because
    text.npy holds one prompt per class and top-1 compares the argmax with the label."""
    path = Path(folder) / META_FILE
    names = _dict_from(path).get("fine_label_names")
    if not isinstance(names, list) or len(names) != N_CLASSES:
        raise ZooreproError(f"{path}: 'fine_label_names' must list {N_CLASSES} names")
    return [str(name) for name in names]


def read_text(folder: Path, n_classes: int) -> np.ndarray:
    """text.npy as int64 [n_classes, context]: one tokenized prompt per class. The model JSON
    declares the input LONG (the backends cast to it per batch); it is cast here once."""
    path = Path(folder) / TEXT_FILE
    try:
        text = np.load(path)
    except (OSError, ValueError) as exc:
        raise ZooreproError(f"{path}: cannot read it as a .npy array ({exc})") from exc
    if not np.issubdtype(text.dtype, np.integer) or text.ndim != 2 or len(text) != n_classes:
        raise ZooreproError(f"{path}: expected integer token ids [{n_classes}, context], "
                            f"found {text.dtype} {list(text.shape)}")
    return text.astype(np.int64, copy=False)


def _to_rgb(image: Image.Image) -> Image.Image:
    """CLIP's RGB conversion (CIFAR images are RGB already; kept so the chain is CLIP's)."""
    return image.convert("RGB")


def clip_transform() -> Callable[[Image.Image], torch.Tensor]:
    """CLIP's preprocessing, in CLIP's order: bicubic resize of the short side to 224, centre
    crop 224, RGB, to a [0,1] tensor, normalize with CLIP's mean and std."""
    return Compose([Resize(INPUT_SIZE, interpolation=InterpolationMode.BICUBIC), CenterCrop(INPUT_SIZE),
                    _to_rgb, ToTensor(), Normalize(CLIP_MEAN, CLIP_STD)])


class OpenCifar:
    """The open_cifar test set in `folder` (a `cifar-100-python/` folder), batched as
    ByteMLPerf batches it: feeds {"image": float32 [bs,3,224,224], "text": int64 [100,77]}."""

    def __init__(self, folder: Path) -> None:
        folder = Path(folder)
        if not folder.is_dir():
            raise ZooreproError(f"{folder}: no such folder (expected {CIFAR_DIR}/ with "
                                f"{TEST_FILE}, {META_FILE} and {TEXT_FILE})")
        self.images, self.labels = read_test_split(folder)
        self.classes = read_class_names(folder)
        self.text = read_text(folder, len(self.classes))
        self._transform = clip_transform()
        self._preprocessed: list[np.ndarray | None] = [None] * len(self.images)
        self.batch_size = 1
        self.batch_count = len(self.images)

    def __len__(self) -> int:
        return len(self.images)

    def rebatch(self, batch_size: int) -> None:
        """Batches of `batch_size`: floor(N / batch_size) of them, the remainder dropped."""
        if batch_size < 1:
            raise ZooreproError(f"batch size must be at least 1, got {batch_size}")
        self.batch_size = batch_size
        self.batch_count = len(self) // batch_size

    def eval_batch_count(self, data_percent: float | None) -> int:
        """How many batches an accuracy run reads: int(data_percent / 100 * batches), all of
        them when data_percent is 0 or None (ByteMLPerf's rule)."""
        if data_percent and not 0 < data_percent <= 100:
            raise ZooreproError(f"data_percent must be in (0, 100], got {data_percent}")
        return int(data_percent / 100 * self.batch_count) if data_percent else self.batch_count

    def preprocessed(self, index: int) -> np.ndarray:
        """Image `index` after CLIP's preprocessing, float32 [3,224,224], computed once."""
        cached = self._preprocessed[index]
        if cached is None:
            cached = self._transform(Image.fromarray(self.images[index])).numpy()
            self._preprocessed[index] = cached
        return cached

    def get_samples(self, batch: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Feeds and int64 labels of batch `batch` at the current batch size; `text` is the same
        array with every batch."""
        if not 0 <= batch < self.batch_count:
            raise IndexError(f"batch {batch} out of range 0..{self.batch_count - 1}")
        indices = range(batch * self.batch_size, (batch + 1) * self.batch_size)
        image = np.stack([self.preprocessed(i) for i in indices])
        return {"image": image, "text": self.text}, np.array([self.labels[i] for i in indices], np.int64)


def top1(logits_per_image_batches: Iterable[np.ndarray], labels_batches: Iterable[Sequence[int]]) -> float:
    """ByteMLPerf's Top-1: a sample is good when the argmax of its logits_per_image row is its
    label; returns good / total rounded to 5 decimals (a fraction)."""
    logits_list = [np.asarray(logits) for logits in logits_per_image_batches]
    labels_list = [np.asarray(labels) for labels in labels_batches]
    if len(logits_list) != len(labels_list):
        raise ZooreproError(f"{len(logits_list)} logits batches for {len(labels_list)} label batches")
    good = total = 0
    for logits, labels in zip(logits_list, labels_list):
        if logits.ndim != 2 or logits.shape[1] == 0 or len(logits) != len(labels):
            raise ZooreproError(f"logits {list(logits.shape)} do not match {len(labels)} labels")
        good += int(np.count_nonzero(np.argmax(logits, axis=1) == labels))
        total += len(labels)
    if total == 0:
        raise ZooreproError("no samples to score")
    return round(good / total, 5)
