"""VideoBERT's data path on the mini scale: the restricted CIFAR unpickler, the open_cifar loader
(ByteMLPerf's semantics, CLIP's preprocessing), Top-1, the mini generator and the ONNX export.

The mini set is generated once per module twice over (in-process, and by the script in a fresh
process) and exported once by the script, as the rules run them.
"""
from __future__ import annotations

import io
import json
import os
import pickle
import pickletools
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported: never download

import numpy as np
import onnx
import onnxruntime
import pytest
import yaml
from conftest import CallsEval, Rot13Codec, RunsCommand
import torch
from PIL import Image

from conftest import tiny_onnx
from zoorepro.errors import ShapeMismatchError, UnsafePickleError, ZooreproError
from zoorepro.download import load_manifest
from zoorepro.fsutil import sha256sum
from zoorepro.planted import path_for
from zoorepro.videobert.make_mini import (END_TOKEN, MANIFEST, MODEL_DIR, START_TOKEN, TEXT_VOCAB, check_planted,
                                          draw_images, make_mini, plant_labels, py2_pickle)
from zoorepro.videobert.cifar import (CIFAR_DIR, CLIP_MEAN, CLIP_STD, META_FILE, TEST_FILE, TEXT_FILE, OpenCifar,
                                      restricted_load, top1)
from zoorepro.videobert.export_onnx import INPUT_NAMES, OUTPUT_NAMES, check_signature, load_model

REPO = Path(__file__).resolve().parents[1]
N_IMAGES = 130  # every look appears, and 130 is no multiple of 4: rebatch(4) drops a remainder
PLANTED_TOP1, PLANTED_MARGIN = 0.585, 0.1  # make_mini's defaults, params.yaml videobert.mini


def run_script(name: str, *args: object) -> str:
    """Run the step zoorepro.videobert.<name> like a rule does; fail the test with its stderr."""
    result = subprocess.run([sys.executable, "-m", f"zoorepro.videobert.{name}", *map(str, args)],
                            cwd=REPO, capture_output=True, text=True, check=False,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, f"{name} failed:\n{result.stderr[-4000:]}"
    return result.stdout


def globals_named(payload: bytes) -> list[str]:
    """The `module name` of every GLOBAL opcode in a pickle."""
    return [arg for op, arg, _ in pickletools.genops(payload) if op.name == "GLOBAL"]


@pytest.fixture(scope="module")
def mini(tmp_path_factory) -> dict[str, Path]:
    """The mini set generated twice: in-process, and by the script in a fresh process."""
    root = tmp_path_factory.mktemp("mini")
    make_mini(root / "a", seed=0, n_images=N_IMAGES)
    run_script("make_mini", "--out", root / "b", "--seed", 0, "--n-images", N_IMAGES)
    return {"a": root / "a", "b": root / "b"}


@pytest.fixture(scope="module")
def exported(tmp_path_factory, mini) -> Path:
    path = tmp_path_factory.mktemp("onnx") / "video-bert.onnx"
    out = run_script("export_onnx", "--model_dir", mini["a"] / MODEL_DIR, "--save_path", path, "--opset", 17)
    assert "max abs diff" in out
    return path


def write_cifar(folder: Path, data: np.ndarray, test_extra: dict, *, n_names: int = 100,
                text: np.ndarray | None = None) -> Path:
    """A cifar-100-python folder pickled as Python 3 writes protocol 2 (str keys, bytes through
    _codecs.encode): the other format a CIFAR file can come in besides the original one."""
    folder.mkdir(parents=True)
    (folder / TEST_FILE).write_bytes(pickle.dumps({"data": data, **test_extra}, protocol=2))
    (folder / META_FILE).write_bytes(pickle.dumps({"fine_label_names": [f"c{k}" for k in range(n_names)],
                                                   "coarse_label_names": ["s"] * 20}, protocol=2))
    np.save(folder / TEXT_FILE, np.arange(100 * 77, dtype=np.int64).reshape(100, 77) if text is None else text)
    return folder


@pytest.fixture
def crafted(tmp_path) -> tuple[Path, np.ndarray]:
    """Five images whose planar rows set pixel (row 1, column 2) of image 0 to RGB (10, 20, 30)."""
    data = np.random.default_rng(3).integers(0, 256, size=(5, 3072), dtype=np.uint8)
    data[0, [0 * 1024 + 1 * 32 + 2, 1 * 1024 + 1 * 32 + 2, 2 * 1024 + 1 * 32 + 2]] = (10, 20, 30)
    return write_cifar(tmp_path / CIFAR_DIR, data, {"fine_labels": [7, 3, 99, 0, 42]}), data


# ---- the restricted unpickler --------------------------------------------------------------------

def test_restricted_load_reads_the_original_python2_format():
    array = np.arange(2 * 3072).astype(np.uint8).reshape(2, 3072)
    payload = py2_pickle({b"data": array, b"fine_labels": [1, 300, 70_000], b"batch_label": b"x" * 300})
    assert globals_named(payload) == ["numpy.core.multiarray _reconstruct", "numpy ndarray", "numpy dtype"]
    assert set(pickle.loads(payload, encoding="bytes")) == {b"data", b"fine_labels", b"batch_label"}
    loaded = restricted_load(io.BytesIO(payload))
    assert sorted(loaded) == ["batch_label", "data", "fine_labels"]  # str keys, as torchvision reads them
    assert loaded["data"].dtype == np.uint8 and np.array_equal(loaded["data"], array)
    assert loaded["fine_labels"] == [1, 300, 70_000] and loaded["batch_label"] == "x" * 300


def test_restricted_load_reads_a_python3_protocol2_pickle_from_a_path(tmp_path):
    array = np.arange(3072, dtype=np.uint8).reshape(1, 3072)
    payload = pickle.dumps({"data": array, "labels": [5]}, protocol=2)
    assert "_codecs encode" in globals_named(payload)
    (tmp_path / "p").write_bytes(payload)
    loaded = restricted_load(tmp_path / "p")
    assert np.array_equal(loaded["data"], array) and loaded["labels"] == [5]


def test_a_pickle_that_runs_a_command_is_refused_before_it_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    payload = pickle.dumps(RunsCommand(), protocol=2)
    with pytest.raises(UnsafePickleError, match=r"posix\.system"):
        restricted_load(io.BytesIO(payload))
    assert not (tmp_path / "marker").exists()
    pickle.loads(payload)  # the payload is live: plain pickle runs it
    assert (tmp_path / "marker").exists()


@pytest.mark.parametrize("protocol, asked", [(4, "builtins.eval"), (2, "__builtin__.eval")])
def test_eval_is_refused(protocol, asked):
    with pytest.raises(UnsafePickleError, match=asked):
        restricted_load(io.BytesIO(pickle.dumps(CallsEval(), protocol=protocol)))


def test_codecs_encode_is_admitted_for_latin1_only():
    with pytest.raises(UnsafePickleError, match="rot13"):
        restricted_load(io.BytesIO(pickle.dumps(Rot13Codec(), protocol=2)))


def test_globals_no_cifar_file_uses_are_refused():
    payload = pickle.dumps(np.zeros(3, np.uint8), protocol=5)  # protocol 5 arrays use _frombuffer
    with pytest.raises(UnsafePickleError, match="_frombuffer"):
        restricted_load(io.BytesIO(payload))


def test_a_truncated_pickle_is_a_one_line_error():
    payload = py2_pickle({b"data": np.zeros((1, 3072), np.uint8)})
    with pytest.raises(ZooreproError, match="not a readable CIFAR pickle") as info:
        restricted_load(io.BytesIO(payload[:-100]))
    assert not isinstance(info.value, UnsafePickleError)


# ---- the loader -----------------------------------------------------------------------------------

def test_rows_become_hwc_images_with_fine_labels(crafted):
    folder, data = crafted
    dataset = OpenCifar(folder)
    assert dataset.images.shape == (5, 32, 32, 3) and dataset.images.dtype == np.uint8
    assert dataset.images[0, 1, 2].tolist() == [10, 20, 30]
    assert np.array_equal(dataset.images[4, :, :, 1].ravel(), data[4, 1024:2048])  # green plane, row-major
    assert dataset.labels == [7, 3, 99, 0, 42] and len(dataset.classes) == 100


def test_labels_win_over_fine_labels(tmp_path):
    data = np.zeros((2, 3072), np.uint8)
    folder = write_cifar(tmp_path / CIFAR_DIR, data, {"labels": [1, 2], "fine_labels": [3, 4]})
    assert OpenCifar(folder).labels == [1, 2]


def test_rebatch_drops_the_remainder_and_feeds_the_same_text(crafted):
    folder, _ = crafted
    dataset = OpenCifar(folder)
    dataset.rebatch(2)
    assert dataset.batch_count == 2
    feeds = [dataset.get_samples(i) for i in range(2)]
    assert [labels.tolist() for _, labels in feeds] == [[7, 3], [99, 0]]
    assert all(f["image"].shape == (2, 3, 224, 224) and f["image"].dtype == np.float32 for f, _ in feeds)
    assert feeds[0][0]["text"] is feeds[1][0]["text"] is dataset.text
    assert dataset.text.dtype == np.int64 and np.array_equal(dataset.text, np.load(folder / TEXT_FILE))
    with pytest.raises(IndexError):
        dataset.get_samples(2)
    with pytest.raises(ZooreproError):
        dataset.rebatch(0)


def test_data_percent_takes_a_floor_share_of_the_batches(crafted):
    dataset = OpenCifar(crafted[0])
    assert [dataset.eval_batch_count(p) for p in (50, 100, None, 0)] == [2, 5, 5, 5]
    with pytest.raises(ZooreproError):
        dataset.eval_batch_count(150)


def test_preprocessing_is_clips_and_runs_once_per_image(crafted):
    dataset = OpenCifar(crafted[0])
    got = dataset.preprocessed(0)
    # CLIP's chain by hand: a 32x32 image scales to 224x224 (so the centre crop keeps all of it),
    # bicubic, then [0,1] scaling and CLIP's per-channel mean/std.
    pixels = Image.fromarray(dataset.images[0]).resize((224, 224), Image.Resampling.BICUBIC)
    want = ((np.asarray(pixels, np.float32) / 255 - CLIP_MEAN) / CLIP_STD).transpose(2, 0, 1)
    assert got.shape == (3, 224, 224) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    assert dataset.preprocessed(0) is got


@pytest.mark.parametrize("n_names, text_rows, message", [(99, 100, "fine_label_names"), (100, 99, "text.npy")])
def test_meta_and_text_must_cover_100_classes(tmp_path, n_names, text_rows, message):
    folder = write_cifar(tmp_path / CIFAR_DIR, np.zeros((1, 3072), np.uint8), {"fine_labels": [0]},
                         n_names=n_names, text=np.zeros((text_rows, 77), np.int64))
    with pytest.raises(ZooreproError, match=message):
        OpenCifar(folder)


def test_a_missing_folder_is_named(tmp_path):
    with pytest.raises(ZooreproError, match="no such folder"):
        OpenCifar(tmp_path / CIFAR_DIR)


# ---- Top-1 ----------------------------------------------------------------------------------------

def test_top1_is_a_fraction_rounded_to_5_decimals():
    logits = [np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1]]), np.array([[0.0, 0.0, 1.0]])]
    assert top1(logits, [[1, 1], [2]]) == 0.66667  # 2 of 3
    assert top1([np.array([[0.5, 0.5, 0.0]])], [[0]]) == 1.0  # a tie goes to the first class


def test_top1_refuses_mismatched_batches():
    with pytest.raises(ZooreproError):
        top1([np.zeros((2, 3))], [[0]])
    with pytest.raises(ZooreproError):
        top1([np.zeros((1, 3))], [[0], [1]])
    with pytest.raises(ZooreproError):
        top1([], [])


# ---- the mini generator ---------------------------------------------------------------------------

def test_mini_generation_is_byte_identical_across_runs(mini):
    first, second = (mini[k] / MANIFEST for k in ("a", "b"))
    assert first.read_bytes() == second.read_bytes()
    files = json.loads(first.read_text())["files"]
    on_disk = sorted(p.relative_to(mini["a"]).as_posix() for p in mini["a"].rglob("*") if p.is_file())
    assert sorted([*files, MANIFEST]) == on_disk
    assert all(sha256sum(mini["a"] / name) == digest for name, digest in files.items())


def test_mini_pickles_read_as_torchvision_reads_the_real_ones(mini):
    folder = mini["a"] / CIFAR_DIR
    with (folder / TEST_FILE).open("rb") as stream:
        test = pickle.load(stream, encoding="latin1")
    assert list(test) == ["filenames", "batch_label", "fine_labels", "coarse_labels", "data"]
    assert test["data"].dtype == np.uint8 and test["data"].shape == (N_IMAGES, 3072)
    fine = test["fine_labels"]
    assert len(fine) == N_IMAGES and all(0 <= label < 100 for label in fine)
    assert test["coarse_labels"] == [label // 5 for label in fine]  # 5 fine classes per superclass
    assert all(name.startswith(f"mini_class_{label:02d}_s_") for name, label in zip(test["filenames"], fine))
    with (folder / META_FILE).open("rb") as stream:
        meta = pickle.load(stream, encoding="bytes")  # the original files keep bytes keys this way
    assert len(meta[b"fine_label_names"]) == 100 and len(meta[b"coarse_label_names"]) == 20


def test_mini_prompts_look_like_clip_tokens(mini):
    text = np.load(mini["a"] / CIFAR_DIR / TEXT_FILE)
    assert text.shape == (100, 77) and text.dtype == np.int64
    assert (text[:, 0] == START_TOKEN).all() and (text.max(axis=1) == END_TOKEN).all()
    ends = np.argmax(text == END_TOKEN, axis=1)
    assert all((row[end + 1:] == 0).all() and (row[1:end] > 0).all() for row, end in zip(text, ends))
    assert len({row.tobytes() for row in text}) == 100 and text.max() < TEXT_VOCAB


def test_mini_images_are_told_apart_by_look():
    looks = np.random.default_rng(0).permutation(np.arange(N_IMAGES) % 100)
    images = draw_images(looks, np.random.default_rng(1))
    pixels = images.reshape(len(images), -1).astype(np.float32)
    distances = ((pixels[:, None] - pixels[None]) ** 2).sum(-1)
    np.fill_diagonal(distances, np.inf)
    has_twin = np.bincount(looks)[looks] > 1
    nearest = looks[np.argmin(distances, axis=1)]
    assert (nearest == looks)[has_twin].all()  # a same-look image is always the nearest one


# ---- planted outcomes -----------------------------------------------------------------------------

def half_precision_top1(mini: Path) -> tuple[float, float]:
    """Top-1 of the saved model run in float16 by torch on the pipeline's own loader and
    preprocessing, against the planted labels; and the largest fp16-vs-fp32 logit difference."""
    from transformers import CLIPModel

    dataset = OpenCifar(mini / CIFAR_DIR)
    model = CLIPModel.from_pretrained(str(mini / MODEL_DIR)).eval()
    pixels = torch.from_numpy(np.stack([dataset.preprocessed(i) for i in range(len(dataset))]))
    text = torch.from_numpy(dataset.text)
    with torch.no_grad():
        full = model(input_ids=text, pixel_values=pixels).logits_per_image.numpy()
        half = model.half()(input_ids=text, pixel_values=pixels.half()).logits_per_image.float().numpy()
    return top1([half], [dataset.labels]), float(np.abs(half - full).max())


def test_planted_top1_is_the_planted_share_and_survives_float16(mini):
    """The planted Top-1 is round(planted_top1 * N) / N, in percent; the same labels scored on
    the fp16 model (as the IxRT engine computes) through the pipeline's preprocessing give the same
    Top-1, and fp16 moves the logits by less than the planted margin."""
    claim = yaml.safe_load(path_for(mini["a"]).read_text())["claims"][0]
    assert (claim["id"], claim["metric"], claim["unit"]) == ("videobert.mini.top1", "top1", "percent")
    assert claim["value"] == pytest.approx(100 * round(PLANTED_TOP1 * N_IMAGES) / N_IMAGES, abs=1e-9)
    fp16_top1, fp16_error = half_precision_top1(mini["a"])
    assert fp16_error < PLANTED_MARGIN / 2
    assert fp16_top1 == pytest.approx(claim["value"] / 100, abs=1e-5)


def test_planted_labels_keep_their_margins():
    logits = np.random.default_rng(5).normal(size=(300, 100)).astype(np.float32)
    labels, right = plant_labels(logits, 0.4, 0.2, np.random.default_rng(6))
    assert right.sum() == 120
    ranks = (logits > logits[np.arange(300), labels][:, None]).sum(axis=1)  # 0 = the image's top class
    assert (ranks[right] == 0).all() and (ranks[~right] >= 50).all()
    assert check_planted(logits, labels, right, 0.2) == pytest.approx(40.0)


def test_planting_refuses_what_the_margins_cannot_promise():
    logits = np.random.default_rng(5).normal(size=(300, 100)).astype(np.float32)
    with pytest.raises(ZooreproError, match="lead by >= 5"):
        plant_labels(logits, 0.4, 5.0, np.random.default_rng(6))
    labels, right = plant_labels(logits, 0.4, 0.2, np.random.default_rng(6))
    ordered = np.sort(logits, axis=1)
    wrong = np.flatnonzero(~right & (ordered[:, -1] - ordered[:, -2] < 0.1))[0]
    labels[wrong] = np.argsort(logits[wrong])[-2]  # a runner-up near a tie: float noise could make it right
    with pytest.raises(ZooreproError, match="within the margin"):
        check_planted(logits, labels, right, 0.2)


def test_mini_model_has_the_real_models_interface(mini):
    model = load_model(mini["a"] / MODEL_DIR)
    text, vision = model.clip.config.text_config, model.clip.config.vision_config
    assert (text.vocab_size, text.max_position_embeddings, text.eos_token_id) == (TEXT_VOCAB, 77, END_TOKEN)
    assert (vision.image_size, vision.patch_size) == (224, 32)


# ---- the export -----------------------------------------------------------------------------------

def test_export_has_video_berts_signature(exported):
    model = onnx.load(str(exported))
    onnx.checker.check_model(model)

    def dims(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    T = onnx.TensorProto
    assert [(i.name, i.type.tensor_type.elem_type, dims(i)) for i in model.graph.input] == [
        ("image", T.FLOAT, ["batch_size", 3, 224, 224]), ("text", T.INT64, [100, 77])]
    assert [(o.name, dims(o)) for o in model.graph.output] == [
        ("logits_per_image", ["batch_size", 100]), ("logits_per_text", [100, "batch_size"])]
    assert not list(exported.parent.glob(".*.tmp"))


def test_onnxruntime_matches_torch_on_loader_batches(exported, mini):
    dataset = OpenCifar(mini["a"] / CIFAR_DIR)
    dataset.rebatch(4)
    assert dataset.batch_count == N_IMAGES // 4
    session = onnxruntime.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    model = load_model(mini["a"] / MODEL_DIR)
    logits, labels = [], []
    for i in range(3):
        feeds, batch_labels = dataset.get_samples(i)
        got = dict(zip(OUTPUT_NAMES, session.run(list(OUTPUT_NAMES), feeds)))
        with torch.no_grad():
            want = model(*(torch.from_numpy(feeds[name]) for name in INPUT_NAMES))
        for name, tensor in zip(OUTPUT_NAMES, want):
            np.testing.assert_allclose(got[name], tensor.numpy(), atol=1e-4, rtol=0)
        np.testing.assert_array_equal(got["logits_per_text"], got["logits_per_image"].T)
        logits.append(got["logits_per_image"])
        labels.append(batch_labels)
    assert np.ptp(np.concatenate(logits), axis=0).max() > 0  # the images are told apart
    assert 0.0 <= top1(logits, labels) <= 1.0


def test_check_signature_refuses_another_graph(tmp_path):
    with pytest.raises(ShapeMismatchError, match="expected"):
        check_signature(tiny_onnx(tmp_path / "other.onnx"))


def test_manifest_names_both_tarballs_and_where_they_unpack():
    entries = {e.name: e for e in load_manifest(REPO / "manifests" / "videobert.yaml")}
    assert entries["open_videobert"].url.endswith("/bytemlperf-zoo/open_videobert.tar")
    assert entries["open_videobert"].extract == "model_zoo/popular"
    assert entries["open_cifar"].url.endswith("/bytemlperf-zoo/cifar-100-python.tar")
    assert entries["open_cifar"].extract == "datasets/open_cifar"
    assert all(e.sha256 is None for e in entries.values())


def test_params_refuse_a_mini_set_perf_engine_would_not_score_whole():
    """The planted Top-1 is over every image: n_images must fill whole accuracy batches."""
    from zoorepro.config import load_params
    from zoorepro.videobert.pipeline import check_params

    block = load_params()["videobert"]
    assert check_params(block) == []
    problems = check_params({**block, "mini": {**block["mini"], "n_images": 130}})
    assert len(problems) == 1 and "mini.n_images: 130 is not a multiple" in problems[0]
