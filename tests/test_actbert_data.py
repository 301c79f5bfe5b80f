"""ActBERT's MSR-VTT data path: the restricted record unpickler, the caption csv, the retrieval
metrics (hand-computed, and against PaddleVideo's own MSRVTTMetric and its log line), and the mini
generator, whose files PaddleVideo's MSRVTTDataset and ActBERT pretraining pipeline read.

The mini set is the suite's shared build's (conftest.mini_stage), and is generated once more by the
script, as the rule runs it, to check it comes out the same (in a fresh process: it runs the
patched PaddleVideo sources, while this module imports the installed wheel's). PaddleVideo is
imported once, from a temporary working directory: importing it creates a `.log.txt` in the
working directory.
"""
from __future__ import annotations

import io
import json
import logging
import pickle
import pickletools
import random
import shutil
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path
from types import SimpleNamespace

import lmdb
import numpy as np
import pytest
from conftest import CallsEval, Rot13Codec, RunsCommand

from zoorepro.actbert.metrics import agree, parse_final_line, ranks_from_scores, retrieval_metrics
from zoorepro.actbert.msrvtt import (
    ADMITTED_GLOBALS,
    CAPTIONS_FILE,
    FEATURES_DIR,
    MAX_ACTIONS,
    read_captions,
    read_record,
    restricted_loads,
)
from zoorepro.config import load_params
from zoorepro.errors import UnsafePickleError, ZooreproError
from zoorepro.actbert.make_mini_data import (
    HOWTO_DIR,
    MANIFEST,
    MAX_CAPTION_PIECES,
    MAX_REGIONS,
    TRAIN_CAPTIONS,
    TRAIN_DATA,
    VALID_DATA,
    VOCAB_DIR,
    sha256_bytes,
)
from zoorepro.actbert.sources import prepare_sources

REPO = Path(__file__).resolve().parents[1]
N_VIDEOS = 24
# The upstream format string of MSRVTTMetric.update's log line (typo `mder` included).
UPSTREAM_LINE = "[{}] Final r1:{:.3f}, r5:{:.3f}, r10:{:.3f}, mder:{:.3f}, meanr:{:.3f}"


@pytest.fixture(scope="module")
def mini(tmp_path_factory, mini_stage) -> dict[str, Path]:
    """"a": the shared build's mini set (rule actbert_mini_data, conftest.mini_stage); "b": the
    same generated again here by the script in a fresh process, with the rule's arguments
    (params.yaml), from patched sources of its own."""
    mini = load_params()["actbert"]["mini"]
    root = tmp_path_factory.mktemp("mini")
    src = root / "src"
    prepare_sources(src, REPO / "patches")
    result = subprocess.run([sys.executable, "-m", "zoorepro.actbert.make_mini_data", "--out", str(root / "b"),
                             "--seed", str(mini["seed"]), "--n-videos", str(mini["n_videos"]),
                             "--n-candidates", str(mini["n_candidates"]), "--top1-fraction", str(mini["top1_fraction"]),
                             "--min-margin", str(mini["min_margin"]), "--src", str(src),
                             "--config", "zoorepro/actbert/configs/mini_msrvtt.yaml"],
                            cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-4000:]
    assert mini["n_videos"] == N_VIDEOS
    return {"a": mini_stage("actbert_data_mini") / "data/mini/actbert", "b": root / "b"}


@pytest.fixture(scope="module")
def paddlevideo(tmp_path_factory) -> SimpleNamespace:
    """PaddleVideo's MSRVTTDataset, ActBertDataset, pretraining pipeline and MSRVTTMetric, imported
    from the installed ppvideo wheel (its code imports a top-level `paddlevideo`)."""
    ppvideo = find_spec("ppvideo")
    assert ppvideo is not None and ppvideo.submodule_search_locations, "ppvideo is not installed"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path_factory.mktemp("paddlevideo_cwd"))
        patch.syspath_prepend(next(iter(ppvideo.submodule_search_locations)))
        import paddle
        import paddlevideo.metrics.msrvtt_metric  # noqa: F401  (registers MSRVTTMetric)
        from paddlevideo.loader.dataset.actbert_dataset import ActBertDataset
        from paddlevideo.loader.dataset.msrvtt import MSRVTTDataset
        from paddlevideo.loader.pipelines.compose import Compose
        from paddlevideo.loader.pipelines.multimodal import FeaturePadding, RandomCap, RandomMask, Tokenize
        from paddlevideo.metrics.registry import METRIC
    return SimpleNamespace(paddle=paddle, MSRVTTDataset=MSRVTTDataset, ActBertDataset=ActBertDataset,
                           Compose=Compose, FeaturePadding=FeaturePadding, RandomCap=RandomCap,
                           Tokenize=Tokenize, RandomMask=RandomMask, MSRVTTMetric=METRIC.get("MSRVTTMetric"))


def record(n_boxes: int = 3, n_actions: int = 2, **changes: object) -> dict:
    """A feature record with the real keys and shapes."""
    rng = np.random.default_rng(n_boxes)
    item = {"video_id": "video7010", "image_h": 240, "image_w": 320,
            "features": rng.random((n_boxes, 2048), dtype=np.float32),
            "boxes": np.tile(np.array([10, 20, 110, 220], np.float32), (n_boxes, 1)),
            "action_features": rng.random((n_actions, 2048), dtype=np.float32)}
    item.update(changes)
    return item


def write_lmdb(folder: Path, values: dict[str, bytes]) -> Path:
    """An lmdb folder holding `values` under their utf-8 keys."""
    env = lmdb.open(str(folder), map_size=1 << 24, lock=False)
    with env.begin(write=True) as txn:
        for key, value in values.items():
            txn.put(key.encode(), value)
    env.close()
    return folder


def globals_named(payload: bytes) -> set[str]:
    """`module name` of every GLOBAL opcode in a protocol <= 3 pickle."""
    return {arg for op, arg, _ in pickletools.genops(payload) if op.name == "GLOBAL"}


# ---- the restricted unpickler --------------------------------------------------------------------

def test_the_admitted_globals_are_exactly_the_array_and_scalar_builders():
    assert {f"{module}.{name}" for module, name in ADMITTED_GLOBALS} == {
        "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct",
        "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar",
        "numpy.core.numeric._frombuffer", "numpy._core.numeric._frombuffer",
        "numpy.ndarray", "numpy.dtype", "_codecs.encode"}


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_records_of_every_protocol_load_with_numpy_scalars(protocol):
    item = record(image_h=np.int64(240), image_w=np.float32(320), video_id=np.str_("video7010"))
    loaded = restricted_loads(pickle.dumps(item, protocol=protocol))
    assert loaded["image_h"] == 240 and loaded["image_h"].dtype == np.int64 and loaded["video_id"] == "video7010"
    for key in ("features", "boxes", "action_features"):
        assert loaded[key].dtype == np.float32 and np.array_equal(loaded[key], item[key])


def test_a_mini_record_is_a_numpy1_pickle_and_loads(mini):
    env = lmdb.open(str(mini["a"] / FEATURES_DIR), readonly=True, lock=False)
    with env.begin() as txn:
        payload = txn.get(b"video7010")
    env.close()
    assert globals_named(payload) == {"numpy.core.multiarray _reconstruct", "numpy ndarray", "numpy dtype"}
    ours, plain = restricted_loads(payload), pickle.loads(payload)
    assert sorted(ours) == sorted(plain) and all(np.array_equal(ours[k], plain[k]) for k in plain)


def test_a_record_that_runs_a_command_is_refused_before_it_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    payload = pickle.dumps(RunsCommand())
    db = write_lmdb(tmp_path / "db", {"video1": payload})
    with pytest.raises(UnsafePickleError, match=r"posix\.system"):
        read_record(db, "video1")
    assert not (tmp_path / "marker").exists()
    pickle.loads(payload)  # the payload is live: the plain pickle.loads PaddleVideo uses runs it
    assert (tmp_path / "marker").exists()


@pytest.mark.parametrize("protocol, asked", [(4, "builtins.eval"), (2, "__builtin__.eval")])
def test_eval_is_refused(protocol, asked):
    with pytest.raises(UnsafePickleError, match=asked):
        restricted_loads(pickle.dumps(CallsEval(), protocol=protocol))


def test_codecs_encode_is_admitted_for_latin1_only():
    with pytest.raises(UnsafePickleError, match="rot13"):
        restricted_loads(pickle.dumps(Rot13Codec(), protocol=2))


def test_damaged_or_missing_data_is_a_clear_error(tmp_path):
    with pytest.raises(ZooreproError, match="not a readable feature record"):
        restricted_loads(pickle.dumps(record())[:-40])
    with pytest.raises(ZooreproError, match="got NoneType"):
        restricted_loads(None)
    with pytest.raises(ZooreproError, match="no data.mdb"):
        read_record(tmp_path, "video1")


# ---- read_record ---------------------------------------------------------------------------------

def test_read_record_reshapes_as_the_loader(tmp_path):
    flat = record(n_boxes=4, features=np.arange(4 * 2048, dtype=np.float32), image_w="320")
    db = write_lmdb(tmp_path / "db", {"video7010": pickle.dumps(flat)})
    item = read_record(db, "video7010")
    assert item["features"].shape == (4, 2048) and item["features"][1, 0] == 2048
    assert item["image_w"] == 320 and item["boxes"].shape == (4, 4) and item["action_features"].shape == (2, 2048)
    assert not (db / "lock.mdb").exists()  # opened read-only, without a lock file


@pytest.mark.parametrize("item, message", [
    ({k: v for k, v in record().items() if k != "boxes"}, r"missing keys \['boxes'\]"),
    (record(features=np.zeros((3, 2047), np.float32)), "'features' must be a numeric array of 2048-value rows"),
    (record(features=np.zeros((3, 2048), object)), "'features' must be a numeric array"),
    (record(boxes=np.zeros((2, 4), np.float32)), "3 feature rows for 2 boxes"),
    (record(n_boxes=0), "0 feature rows for 0 boxes"),
    (record(n_actions=MAX_ACTIONS + 1), "6 action rows"),
    (record(image_h=0), "'image_h' must be positive"),
    (record(image_w="wide"), "'image_w' is not an integer"),
    ([1, 2], "expected a dict"),
])
def test_read_record_refuses_what_the_loader_cannot_use(tmp_path, item, message):
    db = write_lmdb(tmp_path / "db", {"video9": pickle.dumps(item)})
    with pytest.raises(ZooreproError, match=f"record 'video9': {message}"):
        read_record(db, "video9")


def test_read_record_names_a_missing_video(tmp_path):
    db = write_lmdb(tmp_path / "db", {"video1": pickle.dumps(record())})
    with pytest.raises(ZooreproError, match="no feature record for 'video2'"):
        read_record(db, "video2")


# ---- the caption csv -----------------------------------------------------------------------------

def test_read_captions_keeps_paddlevideos_split_and_counts_truncations(tmp_path):
    path = tmp_path / CAPTIONS_FILE
    path.write_text("video7010,a man is cooking\n  video7011,a dog, a cat and a bird,run\nvideo7012,x\n")
    captions = read_captions(path)
    assert captions.entries == [("video7010", "a man is cooking"), ("video7011", "a dog"), ("video7012", "x")]
    assert list(captions) == captions.entries and len(captions) == 3
    assert captions.truncated == (2,)
    assert captions.note.startswith(f"1 of 3 captions in {CAPTIONS_FILE} contain a comma")
    assert captions.note.endswith("(lines 2)")


@pytest.mark.parametrize("text, message", [("video1,a\n\nvideo2,b\n", ":2: no comma"),
                                           ("video1 a man\n", ":1: no comma"), ("", "no captions")])
def test_read_captions_refuses_lines_the_loader_fails_on(tmp_path, text, message):
    path = tmp_path / "c.csv"
    path.write_text(text)
    with pytest.raises(ZooreproError, match=message):
        read_captions(path)


# ---- metrics -------------------------------------------------------------------------------------

# Rows are captions, columns videos; caption i's video is column i. Sorted by descending score:
# row 0: 0 3 2 1 -> rank 0;  row 1: 0 3 2 1 -> rank 3;  row 2: 1 2 3 0 -> rank 1;  row 3: 1 2 0 3 -> rank 3.
SCORES = np.array([[0.9, 0.1, 0.2, 0.3],
                   [0.8, 0.1, 0.5, 0.7],
                   [0.1, 0.6, 0.4, 0.2],
                   [0.3, 0.9, 0.8, 0.1]])


def test_ranks_and_metrics_by_hand():
    ranks = ranks_from_scores(SCORES, np.eye(4))
    assert ranks.tolist() == [0, 3, 1, 3]
    targets = np.eye(4)
    targets[1, 3] = 1  # a video listed twice: upstream ranks the first match (column 1), not column 3 (rank 1)
    assert ranks_from_scores(SCORES, targets).tolist() == [0, 3, 1, 3]
    # sorted ranks 0 1 3 3: median 2 -> floor(3) = 3; mean 7/4 -> 2.75
    assert retrieval_metrics(ranks) == {"R@1": 25.0, "R@5": 100.0, "R@10": 100.0, "MedianR": 3.0, "MeanR": 2.75}


def test_metrics_by_hand_with_a_half_median():
    metrics = retrieval_metrics(np.array([0, 1, 4, 5, 9, 12]))
    # R@1 1/6, R@5 3/6 (0 1 4), R@10 5/6; median (4 + 5) / 2 = 4.5 -> floor(5.5) = 5; mean 31/6 + 1
    assert metrics == pytest.approx({"R@1": 100 / 6, "R@5": 50.0, "R@10": 500 / 6, "MedianR": 5.0,
                                     "MeanR": 31 / 6 + 1})


def test_ranks_refuse_a_caption_without_ground_truth_and_bad_shapes():
    with pytest.raises(ZooreproError, match="caption 2 has no ground-truth"):
        ranks_from_scores(SCORES, np.diag([1, 1, 0, 1]))
    with pytest.raises(ZooreproError, match="same non-empty 2-D shape"):
        ranks_from_scores(SCORES, np.eye(3))
    with pytest.raises(ZooreproError, match="non-empty 1-D"):
        retrieval_metrics(np.array([]))


def test_parse_final_line_takes_the_last_line_in_the_upstream_format():
    log = "\n".join(["[11/22 05:11:27] [0] Final r1:0.000, r5:100.000, r10:100.000, mder:2.000, meanr:2.000",
                     "[11/22 05:11:27] " + UPSTREAM_LINE.format(1, 8.6, 31.2, 45.5, 13.0, 28.5),
                     "[11/22 05:11:28] Eval Finished!"])
    parsed = parse_final_line(log)
    assert parsed == {"batch_id": 1, "R@1": 8.6, "R@5": 31.2, "R@10": 45.5, "MedianR": 13.0, "MeanR": 28.5}
    assert parse_final_line(log, expected_captions=2) == parsed
    with pytest.raises(ZooreproError, match=r"last Final line is \[1\], i.e. 2 captions; expected 1000"):
        parse_final_line(log, expected_captions=1000)


def test_parse_final_line_refuses_a_log_without_one():
    with pytest.raises(ZooreproError, match="no `\\[N\\] Final"):
        parse_final_line("[11/22 05:11:27] Eval Finished!\n[0] Final r1:1.0, r5:2.0, r10:3.0, medr:4.0, meanr:5.0")


def test_agree_passes_rounded_values_and_names_a_mismatch():
    computed = retrieval_metrics(np.array([0, 1, 4, 5, 9, 12]))
    logged = parse_final_line(UPSTREAM_LINE.format(5, *computed.values()))
    agree(logged, computed)
    with pytest.raises(ZooreproError, match=r"R@5 51\.0000 vs 50\.0000") as error:
        agree({**logged, "R@5": 51.0}, computed)
    assert "R@1" not in str(error.value)
    with pytest.raises(ZooreproError, match=r"\['MeanR'\] missing"):
        agree({k: v for k, v in logged.items() if k != "MeanR"}, computed)


def test_metrics_match_paddlevideos_msrvttmetric_and_its_log_line(paddlevideo):
    paddle, n = paddlevideo.paddle, 200
    # three logit levels: many tied scores, whose order is numpy's default (unstable) argsort's
    logits = np.random.default_rng(5).integers(0, 3, size=(n, n, 2)).astype(np.float32)
    metric = paddlevideo.MSRVTTMetric(n, 1)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logging.getLogger("paddlevideo").addHandler(handler)
    try:
        for caption in range(n):
            target = np.zeros(n)
            target[(caption * 7) % n] = 1
            metric.update(caption, [paddle.to_tensor(target)], [paddle.to_tensor(logits[caption])])
    finally:
        logging.getLogger("paddlevideo").removeHandler(handler)
    ranks = ranks_from_scores(metric.score_matrix, metric.target_matrix)
    assert ranks.tolist() == metric.rank_matrix.astype(int).tolist()
    logged = parse_final_line(stream.getvalue(), expected_captions=n)
    agree(logged, retrieval_metrics(ranks))


# ---- the mini generator --------------------------------------------------------------------------

def test_mini_is_deterministic_and_its_manifest_matches_the_files(mini):
    manifest = (mini["a"] / MANIFEST).read_text()
    assert manifest == (mini["b"] / MANIFEST).read_text()
    files = {p.relative_to(mini["a"]).as_posix() for p in mini["a"].rglob("*") if p.is_file()}
    assert files == {MANIFEST, *json.loads(manifest)["files"]}
    assert f"{FEATURES_DIR}/lock.mdb" not in files


def test_every_csv_video_has_a_readable_record(mini):
    manifest = json.loads((mini["a"] / MANIFEST).read_text())
    captions = read_captions(mini["a"] / CAPTIONS_FILE)
    assert len(captions) == N_VIDEOS and not captions.truncated
    assert len({caption for _, caption in captions}) == N_VIDEOS
    env = lmdb.open(str(mini["a"] / FEATURES_DIR), readonly=True, lock=False)
    try:
        with env.begin() as txn:
            assert {key.decode(): sha256_bytes(value) for key, value in txn.cursor()} == manifest["lmdb_records"]
        verbs, means = [], []
        for video_id, _ in captions:
            item = read_record(env, video_id)
            boxes, (h, w) = item["boxes"], (item["image_h"], item["image_w"])
            assert item["video_id"] == video_id and 1 <= len(item["features"]) <= MAX_REGIONS
            assert 1 <= len(item["action_features"]) <= MAX_ACTIONS and item["features"].dtype == np.float32
            assert np.all(boxes >= 0) and np.all(boxes[:, [0, 2]] <= w) and np.all(boxes[:, [1, 3]] <= h)
            assert np.all(boxes[:, 0] < boxes[:, 2]) and np.all(boxes[:, 1] < boxes[:, 3])
            scene = manifest["video_scenes"][video_id]  # what the features show (the csv caption is planted)
            verbs.append(next(word for word in scene.split() if word.endswith("ing")))
            means.append(item["action_features"].mean(axis=0))
    finally:
        env.close()
    # the features follow the scene: videos whose scenes share the verb have close action
    # features, videos with different verbs far ones
    pairs = [(verbs[i] == verbs[j], np.linalg.norm(means[i] - means[j]))
             for i in range(N_VIDEOS) for j in range(i + 1, N_VIDEOS)]
    same, other = [d for shared, d in pairs if shared], [d for shared, d in pairs if not shared]
    assert same and max(same) < min(other)


def test_paddlevideo_reads_the_mini_msrvtt_set(mini, paddlevideo, tmp_path):
    data = shutil.copytree(mini["a"], tmp_path / "data")  # the loader writes lock.mdb into the lmdb folder
    dataset = paddlevideo.MSRVTTDataset(str(data / CAPTIONS_FILE), None, str(data / FEATURES_DIR),
                                        bert_model=str(data / VOCAB_DIR), test_mode=True)
    assert len(dataset) == N_VIDEOS and dataset.features_all.shape == (N_VIDEOS, 36, 2048)
    unk = dataset._tokenizer.vocab["[UNK]"]
    for entry in dataset.caption_entries:
        tokens = entry["token"]
        assert tokens.shape == (36,) and unk not in tokens
        assert int(np.count_nonzero(tokens)) - 2 <= MAX_CAPTION_PIECES
    *_, target = dataset[3]
    assert target[3] == 1 and target.sum() == 1
    assert dataset._tokenizer.tokenize("cooking") == ["cook", "##ing"]


def test_paddlevideo_runs_the_pretraining_pipeline_on_the_mini_howto100m(mini, paddlevideo):
    howto = mini["a"] / HOWTO_DIR
    random.seed(0)
    for data_file in (TRAIN_DATA, VALID_DATA):
        pipeline = paddlevideo.Compose({
            "feature_padding": paddlevideo.FeaturePadding(),
            "random_cap": paddlevideo.RandomCap(str(howto / TRAIN_CAPTIONS)),
            "tokenize": paddlevideo.Tokenize(), "random_mask": paddlevideo.RandomMask()})
        dataset = paddlevideo.ActBertDataset(str(howto / data_file), pipeline, bert_model=str(mini["a"] / VOCAB_DIR))
        assert len(dataset) == (8 if data_file == TRAIN_DATA else 4)
        for i in range(len(dataset)):
            features = dataset[i]
            assert [np.shape(f) for f in features[:4]] == [(36,), (5, 2048), (37, 2048), (37, 5)]
            assert features[12].shape == (36, 1601) and np.allclose(features[12][features[6][1:] == 1].sum(1), 1)


def test_howto100m_feature_npy_loads_like_np_load_but_refuses_foreign_globals(tmp_path, monkeypatch):
    """ActBertDataset's object .npy goes through the restricted unpickler (patches/ppvideo/11)."""
    from zoorepro.actbert.msrvtt import load_feature_npy

    rows = np.empty((2, 3), dtype=object)
    for i in range(2):
        rows[i] = [np.arange(4, dtype=np.float32) + i, np.int64(7 + i), f"clip{i}"]
    path = tmp_path / "clips.npy"
    np.save(path, rows, allow_pickle=True)
    loaded = load_feature_npy(path)
    assert loaded.shape == (2, 3) and loaded[1, 1] == 8 and loaded[0, 2] == "clip0"
    np.testing.assert_array_equal(loaded[1, 0], rows[1, 0])
    plain = tmp_path / "plain.npy"
    np.save(plain, np.ones((2, 2), np.float32))
    assert load_feature_npy(plain).sum() == 4

    monkeypatch.chdir(tmp_path)
    bad = np.empty((1,), dtype=object)
    bad[0] = RunsCommand()
    np.save(tmp_path / "evil.npy", bad, allow_pickle=True)
    with pytest.raises(UnsafePickleError, match="system"):
        load_feature_npy(tmp_path / "evil.npy")
    assert not (tmp_path / "marker").exists()
