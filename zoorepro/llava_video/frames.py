"""The 8 video frames a question is answered from, decoded with PyAV by the document's rule.

Upstream (MindIE-LLM llava_videobench `llava_gpu.py`, and the NPU side's `flash_causal_llava_next`
with its default of 8 frames; ../shared/upstream/llava_clipbert.md §1.3):

* `total = container.streams.video[0].frames` (the count the container reports);
* `indices = np.arange(0, total, total / 8).astype(int)`;
* decode the stream from the start and keep each frame whose decoding index is in `indices`, up to
  the last index; stack them as RGB, (n, H, W, 3) uint8.

`sample_indices` keeps exactly that arithmetic, including its edge cases: a video with fewer than 8
frames gets repeated indices (5 frames: [0 0 1 1 2 3 3 4]) and, since frames are kept by
membership, each decoded frame once (5 frames, not 8), as upstream.

Fixed openly:

* a container that reports 0 frames (some AVI and streamed MP4 files carry no count) makes
  upstream's step `total / 8` zero and numpy raises; here the frames are counted by decoding the
  stream once first (exact: the same decoder's frames that the second pass indexes), then the
  rule applies to that count;
* a file that cannot be opened or decoded, that has no video stream, or that decodes to fewer
  frames than the indices need (a truncated file whose header promises more) is a ZooreproError
  naming the file — upstream would pass fewer frames on silently or fail inside the processor.

`order` is a fault-injection switch (llava_gpu `--frame-order`): `upstream` (the default) keeps
the decoding order, `reversed` reverses the frames, which must change the planted answers.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from zoorepro.errors import ZooreproError
from zoorepro.video import decode_frames, frame_count

__all__ = ["DEFAULT_FRAMES", "ORDERS", "frame_count", "read_frames", "sample_indices"]

DEFAULT_FRAMES = 8
ORDERS = ("upstream", "reversed")


def sample_indices(n: int, k: int = DEFAULT_FRAMES) -> np.ndarray:
    """Upstream's frame indices for a video of `n` frames: np.arange(0, n, n/k).astype(int)."""
    if n < 1:
        raise ZooreproError(f"cannot sample frames from a video of {n} frames")
    return np.arange(0, n, n / k).astype(int)


def read_frames(path: str | Path, k: int = DEFAULT_FRAMES, order: str = "upstream") -> np.ndarray:
    """(n, H, W, 3) uint8 RGB frames of `path` by the upstream rule (module docstring); n = the
    number of distinct indices (k for any video of at least k frames)."""
    if order not in ORDERS:
        raise ZooreproError(f"unknown frame order {order!r} (known: {', '.join(ORDERS)})")
    path = Path(path)
    if not path.is_file():
        raise ZooreproError(f"video not found: {path}")
    total, _ = frame_count(path)
    indices = sample_indices(total, k)
    wanted = {int(i) for i in indices}
    last = int(indices[-1])
    frames = [frame for _, frame in sorted(decode_frames(path, wanted).items())]
    if len(frames) < len(wanted):
        raise ZooreproError(f"video {path} is truncated or corrupt: its container reports {total} frames, "
                            f"but decoding stopped before frame {last} ({len(frames)} of {len(wanted)} sampled "
                            "frames decoded)")
    video = np.stack(frames)
    return video[::-1].copy() if order == "reversed" else video
