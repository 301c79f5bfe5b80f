"""MSR-VTT as PaddleVideo's MSRVTTDataset reads it: the caption csv and the lmdb of feature records.

Why our own reader: MSRVTTDataset unpickles every lmdb value with a plain `pickle.loads`, which runs
whatever a downloaded file asks for. `restricted_loads` admits only the globals a feature record
can name (a patched msrvtt.py calls it instead of `pickle.loads`), and `read_record` checks a
record's keys and shapes the way the loader goes on to use them, so a damaged or foreign database
fails with one message naming the video instead of a broadcast error deep in `gen_feature`.

Formats (PaddleVideo ed245e9c, `loader/dataset/msrvtt.py`; ../shared/upstream/videobert_actbert.md C.3):

* `MSRVTT_JSFUSION_test.csv`: one `video_id,caption` per line, no header. The loader strips each
  line and keeps `split(',')[0]` and `split(',')[1]`: a caption with a comma loses everything
  after its first comma. `read_captions` does the same and says which lines that happened to.
* `msrvtt_test.lmdb/`: key `str(video_id).encode()`, value a pickled dict with `video_id`,
  `image_h`, `image_w`, `features` (reshaped to [-1, 2048]), `boxes` ([-1, 4], pixel x1 y1 x2 y2)
  and `action_features` ([-1, 2048]); other keys are ignored, as the loader ignores them.
"""
from __future__ import annotations

import io
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import lmdb
import numpy as np
from numpy._core.multiarray import _reconstruct, scalar
from numpy._core.numeric import _frombuffer

from zoorepro.errors import ZooreproError
from zoorepro.safepickle import latin1_encode, restricted_unpickler

CAPTIONS_FILE = "MSRVTT_JSFUSION_test.csv"
FEATURES_DIR = "msrvtt_test.lmdb"
RECORD_KEYS = ("video_id", "image_h", "image_w", "features", "boxes", "action_features")
VISION_FEATURE_DIM = 2048
ACTION_FEATURE_DIM = 2048
BOX_DIM = 4
# MSRVTTDataset's max_action_num: it copies a video's action rows into a [5, 2048] slot, so a
# record with more rows fails there (a broadcast error); more boxes than 36 are cut, not refused.
MAX_ACTIONS = 5


# Exactly the globals a pickled feature record (a dict of str, ints and numpy arrays or scalars)
# names, at protocols 2 to 5, written with numpy 1 (`numpy.core`, what the 2021 database was
# written with) or numpy 2 (`numpy._core`): array reconstruction (`_reconstruct`, `ndarray`,
# `dtype`; `_frombuffer` at protocol 5), numpy scalars (`scalar`, e.g. an int64 image_h) and, at
# protocol 2 only, latin-1 `_codecs.encode` for bytes. Nothing here can call back into the pickle.
ADMITTED_GLOBALS: Mapping[tuple[str, str], object] = MappingProxyType({
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.multiarray", "scalar"): scalar,
    ("numpy._core.multiarray", "scalar"): scalar,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): latin1_encode,
})


def restricted_loads(data: bytes) -> object:
    """`pickle.loads(data)` (same default encoding) admitting only the globals a feature record
    needs; a foreign global is an UnsafePickleError, a damaged pickle a one-line ZooreproError."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ZooreproError(f"expected a pickled feature record (bytes), got {type(data).__name__}")
    try:
        return restricted_unpickler(io.BytesIO(data), ADMITTED_GLOBALS, "an MSR-VTT feature record").load()
    except ZooreproError:
        raise
    except Exception as exc:  # a damaged pickle fails in many ways (EOFError, UnpicklingError, ...)
        raise ZooreproError(f"not a readable feature record ({type(exc).__name__}: {exc})") from exc


def load_feature_npy(path: str | os.PathLike) -> np.ndarray:
    """`np.load(path, allow_pickle=True)` for HowTo100M feature files (ActBertDataset's
    actbert_train_data.npy: an object array of clip tuples of arrays, ints and strings), admitting
    only the globals such a file names: an object array is stored as a pickle of the array after
    the .npy header, and that pickle goes through the restricted unpickler. Plain arrays load with
    allow_pickle=False."""
    with open(path, "rb") as stream:
        try:
            version = np.lib.format.read_magic(stream)
            header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                      else np.lib.format.read_array_header_2_0)
            _, _, dtype = header(stream)
        except ValueError as exc:
            raise ZooreproError(f"{path}: not a .npy file ({exc})") from None
        if not dtype.hasobject:
            return np.load(path, allow_pickle=False)
        try:
            array = restricted_unpickler(stream, ADMITTED_GLOBALS, "a HowTo100M feature file").load()
        except ZooreproError:
            raise
        except Exception as exc:  # a damaged pickle fails in many ways
            raise ZooreproError(f"{path}: not a readable feature file ({type(exc).__name__}: {exc})") from exc
    if not isinstance(array, np.ndarray):
        raise ZooreproError(f"{path}: the pickle holds a {type(array).__name__}, not an array")
    return array


def open_features(path: str | os.PathLike) -> lmdb.Environment:
    """The lmdb folder opened read-only and without a lock file, so reading it never writes into
    a checksummed data folder (PaddleVideo's own `lmdb.open(path)` creates lock.mdb there)."""
    if not os.path.isfile(os.path.join(path, "data.mdb")):
        raise ZooreproError(f"{path}: not an lmdb folder (no data.mdb)")
    try:
        return lmdb.open(os.fspath(path), readonly=True, lock=False)
    except lmdb.Error as exc:
        raise ZooreproError(f"{path}: cannot open the lmdb ({exc})") from exc


def read_record(env_or_path: lmdb.Environment | str | os.PathLike, video_id: str) -> dict:
    """The feature record of `video_id`, checked and shaped as MSRVTTDataset uses it: the six
    RECORD_KEYS, image_h/image_w positive ints, features [n, 2048] and boxes [n, 4] with the same
    n >= 1 (the loader averages the features and pairs each with its box), action_features
    [m, 2048] with m <= MAX_ACTIONS, every array numeric. Arrays keep their stored dtype."""
    if isinstance(env_or_path, lmdb.Environment):
        return _read(env_or_path, video_id)
    env = open_features(env_or_path)
    try:
        return _read(env, video_id)
    finally:
        env.close()


def _read(env: lmdb.Environment, video_id: str) -> dict:
    """Fetch, unpickle and check one record."""
    with env.begin(write=False) as txn:
        data = txn.get(str(video_id).encode())
    if data is None:
        raise ZooreproError(f"{env.path()}: no feature record for {video_id!r}")
    try:
        return _checked(restricted_loads(data))
    except ZooreproError as exc:
        raise type(exc)(f"{env.path()}: record {video_id!r}: {exc}") from exc


def _checked(item: object) -> dict:
    """The record's six keys, arrays reshaped as the loader reshapes them."""
    if not isinstance(item, dict):
        raise ZooreproError(f"expected a dict, found {type(item).__name__}")
    missing = [key for key in RECORD_KEYS if key not in item]
    if missing:
        raise ZooreproError(f"missing keys {missing} (has {sorted(map(str, item))})")
    features = _rows(item, "features", VISION_FEATURE_DIM)
    boxes = _rows(item, "boxes", BOX_DIM)
    actions = _rows(item, "action_features", ACTION_FEATURE_DIM)
    if len(features) == 0 or len(features) != len(boxes):
        raise ZooreproError(f"{len(features)} feature rows for {len(boxes)} boxes: need the same "
                            f"number, at least one")
    if len(actions) > MAX_ACTIONS:
        raise ZooreproError(f"{len(actions)} action rows: MSRVTTDataset holds at most {MAX_ACTIONS}")
    return {"video_id": item["video_id"], "image_h": _size(item, "image_h"), "image_w": _size(item, "image_w"),
            "features": features, "boxes": boxes, "action_features": actions}


def _rows(item: dict, key: str, width: int) -> np.ndarray:
    """item[key] as a numeric array reshaped to [-1, width], as the loader reshapes it."""
    value = item[key]
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu" or value.size % width:
        raise ZooreproError(f"{key!r} must be a numeric array of {width}-value rows, found "
                            f"{getattr(value, 'dtype', type(value).__name__)} {list(np.shape(value))}")
    return value.reshape(-1, width)


def _size(item: dict, key: str) -> int:
    """image_h / image_w as the loader's int(...), which must be a positive pixel count (the
    loader divides box coordinates and areas by it)."""
    try:
        size = int(item[key])
    except (TypeError, ValueError):
        raise ZooreproError(f"{key!r} is not an integer: {item[key]!r}") from None
    if size <= 0:
        raise ZooreproError(f"{key!r} must be positive, found {size}")
    return size


@dataclass(frozen=True)
class Captions:
    """The caption csv as MSRVTTDataset reads it. `entries` are (video_id, caption) in file order;
    `truncated` are the 1-based line numbers whose caption had a comma and so was cut there.
    Iterating and len() go over `entries`."""

    path: str
    entries: list[tuple[str, str]]
    truncated: tuple[int, ...]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def note(self) -> str:
        """One line for a table's note: empty when no caption was cut."""
        if not self.truncated:
            return ""
        shown = ", ".join(map(str, self.truncated[:10])) + (", ..." if len(self.truncated) > 10 else "")
        return (f"{len(self.truncated)} of {len(self.entries)} captions in {os.path.basename(self.path)} "
                f"contain a comma; PaddleVideo keeps only the text before the first one (lines {shown})")


def read_captions(csv_path: str | os.PathLike) -> Captions:
    """PaddleVideo's reading of the caption csv: every line stripped, video_id = split(',')[0],
    caption = split(',')[1], no header skipped. A line without a comma (a blank one included)
    makes the loader fail with an IndexError; here it is a ZooreproError naming the line."""
    entries: list[tuple[str, str]] = []
    truncated: list[int] = []
    with open(csv_path, encoding="utf-8") as stream:
        for number, line in enumerate(stream, start=1):
            fields = line.strip().split(",")
            if len(fields) < 2:
                raise ZooreproError(f"{csv_path}:{number}: no comma in {line.strip()!r}; "
                                    f"PaddleVideo's loader needs `video_id,caption` on every line")
            if len(fields) > 2:
                truncated.append(number)
            entries.append((fields[0], fields[1]))
    if not entries:
        raise ZooreproError(f"{csv_path}: no captions")
    return Captions(os.fspath(csv_path), entries, tuple(truncated))
