"""Decoding video frames with PyAV: the parts every model's frame sampler shares. Each model's
sampler (its own module) says which frame indices its document's rule takes; here a file that
cannot be opened or decoded, has no video stream, or ends before a wanted frame is a ZooreproError
naming the file."""
from __future__ import annotations

from pathlib import Path

from zoorepro.errors import ZooreproError


def open_video(path: Path):
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise ZooreproError(f"cannot open video {path}: {exc}") from None
    if not container.streams.video:
        container.close()
        raise ZooreproError(f"video {path} has no video stream")
    return container


def count_frames(path: Path) -> int:
    """How many frames the first video stream decodes to (one full decoding pass)."""
    import av

    container = open_video(path)
    try:
        return sum(1 for _ in container.decode(video=0))
    except av.error.FFmpegError as exc:
        raise ZooreproError(f"cannot decode video {path}: {exc}") from None
    finally:
        container.close()


def frame_count(path: Path) -> tuple[int, bool]:
    """(the container's frame count, or the decoded count where it reports 0; whether it was
    counted by decoding)."""
    container = open_video(path)
    try:
        reported = int(container.streams.video[0].frames or 0)
    finally:
        container.close()
    if reported > 0:
        return reported, False
    counted = count_frames(path)
    if counted == 0:
        raise ZooreproError(f"video {path} decodes to no frames")
    return counted, True


def decode_frames(path: Path, wanted: set[int], size: tuple[int, int] | None = None) -> dict:
    """{index: (H, W, 3) uint8 RGB} for each wanted decoding index, decoding from the start up to
    the last one; `size` (width, height) resizes with PyAV's scaler (bilinear)."""
    import av

    last = max(wanted)
    frames = {}
    container = open_video(path)
    try:
        container.seek(0)
        for i, frame in enumerate(container.decode(video=0)):
            if i > last:
                break
            if i in wanted:
                kwargs = {"width": size[0], "height": size[1]} if size else {}
                frames[i] = frame.to_ndarray(format="rgb24", **kwargs)
    except av.error.FFmpegError as exc:
        raise ZooreproError(f"cannot decode video {path}: {exc}") from None
    finally:
        container.close()
    return frames
