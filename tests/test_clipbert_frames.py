"""ClipBERT's frame sampling (zoorepro/clipbert/sample_imgs_clipbert.py): the sets and indices the
document's text and ClipBERT's loader expect, decoded from real video files, in .npy (no pickle),
seeded, all or nothing on bad input."""
from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from zoorepro.clipbert.sample_imgs_clipbert import (
    MANIFEST,
    load_frames,
    rand_indices,
    sample_all,
    segments,
    uniform_indices,
)
from zoorepro.errors import ZooreproError

STEP = 6  # frame i has red value 6 * i: each frame is told apart from its neighbours after the codec


def write_video(path: Path, n: int, size=(40, 32)) -> Path:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.options = {"crf": "0"}
        for i in range(n):
            img = np.full((size[1], size[0], 3), 128, np.uint8)
            img[:, :, 0] = STEP * i
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def decoded_indices(frames: np.ndarray, video: Path) -> list[int]:
    """Which frame of `video` (every frame decoded at the same size) each sampled frame is."""
    from zoorepro.video import count_frames, decode_frames

    reference = decode_frames(video, set(range(count_frames(video))), size=frames.shape[-1:-3:-1])
    red = np.array([reference[i][..., 0].mean() for i in sorted(reference)])
    return [int(np.abs(red - f[0].mean()).argmin()) for f in frames]


@pytest.fixture
def videos(tmp_path) -> tuple[Path, Path]:
    meta = tmp_path / "meta"
    meta.mkdir()
    lists = {"train": ["v_aaaaaaaaaaa"], "val": ["v_bbbbbbbbbbb"], "test": ["v_ccccccccccc"]}
    for split, ids in lists.items():
        (meta / f"video_{split}.json").write_text(json.dumps(ids))
    write_video(tmp_path / "videos/v_aaaaaaaaaaa.mp4", 40)
    write_video(tmp_path / "videos/v_bbbbbbbbbbb.mkv", 33)
    write_video(tmp_path / "videos/v_ccccccccccc.mp4", 16)
    return tmp_path / "videos", meta


def test_the_rule_cuts_equal_segments_and_takes_random_or_middle_frames():
    assert segments(40, 8) == [(0, 5), (5, 10), (10, 15), (15, 20), (20, 25), (25, 30), (30, 35), (35, 40)]
    assert uniform_indices(40, 8) == [2, 7, 12, 17, 22, 27, 32, 37]
    assert uniform_indices(16, 16) == list(range(16))                  # one-frame segments: the frame
    drawn = rand_indices(40, 8, random.Random(0))
    assert all(a <= i < b - 1 for i, (a, b) in zip(drawn, segments(40, 8)))   # upstream's [start, end - 1)
    assert rand_indices(8, 8, random.Random(0)) == list(range(8))
    with pytest.raises(ZooreproError, match="7 frames, fewer than the 8"):
        rand_indices(7, 8, random.Random(0))


def test_five_train_sets_of_eight_and_sixteen_uniform_frames_per_eval_video(videos, tmp_path):
    video_dir, meta = videos
    manifest = sample_all(video_dir, meta, tmp_path / "img", seed=7, size=24)
    out = tmp_path / "img"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.npy")) == sorted(
        [f"rand/v_aaaaaaaaaaa_{k}.npy" for k in range(1, 6)] + ["uniform/v_bbbbbbbbbbb.npy", "uniform/v_ccccccccccc.npy"])
    train = [load_frames(out / f"rand/v_aaaaaaaaaaa_{k}.npy") for k in range(1, 6)]
    assert all(t.shape == (8, 3, 24, 24) and t.dtype == np.uint8 for t in train)
    for t in train:
        picked = decoded_indices(t, video_dir / "v_aaaaaaaaaaa.mp4")
        assert all(a <= i < b - 1 for i, (a, b) in zip(picked, segments(40, 8))), picked
    assert len({t.tobytes() for t in train}) == 5                       # five different draws
    assert decoded_indices(load_frames(out / "uniform/v_bbbbbbbbbbb.npy"), video_dir / "v_bbbbbbbbbbb.mkv") \
        == uniform_indices(33, 16)
    assert decoded_indices(load_frames(out / "uniform/v_ccccccccccc.npy"), video_dir / "v_ccccccccccc.mp4") \
        == list(range(16))
    assert json.loads((out / MANIFEST).read_text()) == manifest and len(manifest["files"]) == 7
    again = sample_all(video_dir, meta, tmp_path / "again", seed=7, size=24)
    assert again["files"] == manifest["files"]                          # seeded: byte-identical
    assert sample_all(video_dir, meta, tmp_path / "other", seed=8, size=24)["files"] != manifest["files"]


def test_a_pickle_is_never_loaded(tmp_path):
    np.save(tmp_path / "x.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ZooreproError, match="not a sampled-frames .npy"):
        load_frames(tmp_path / "x.npy")


@pytest.mark.parametrize(("damage", "message"), [
    (lambda d: (d / "v_bbbbbbbbbbb.mkv").unlink(), "video v_bbbbbbbbbbb not found"),
    (lambda d: (d / "v_bbbbbbbbbbb.mkv").write_bytes(b"not a video at all"), "cannot (open|decode) video"),
    (lambda d: write_video(d / "v_ccccccccccc.mp4", 12), "12 frames, fewer than the 16"),
])
def test_a_bad_video_is_one_error_and_nothing_is_written(videos, tmp_path, damage, message):
    video_dir, meta = videos
    damage(video_dir)
    with pytest.raises(ZooreproError, match=message):
        sample_all(video_dir, meta, tmp_path / "img", size=24)
    assert not (tmp_path / "img").exists() and not list(tmp_path.glob(".img.*"))
