"""The ViLBERT steps end to end on the mini scale: patched sources -> generated mini data ->
preprocess -> ONNX export, checked against the design's per-sample layout and against torch.

The mini set, its preprocessed samples and the exported ONNX are the suite's shared build's
(conftest.mini_stage: the DAG's rules ran the steps as scripts, with params.yaml's
settings); this module runs the steps again only where a second run is what it checks (the mini
set generated again, a rerun of preprocess on a subset with its own feature cache, a subset run
reusing the build's feature cache). Source preparation runs in-process, which also imports the
patched allennlp here for the checks.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest

from zoorepro.config import load_params
from zoorepro.errors import ZooreproError
from zoorepro.vilbert.make_mini import ARCHIVE, MANIFEST, QUESTIONS_FILE, TOKENIZER_DIR
from zoorepro.vilbert.export_onnx import INPUT_NAMES, OUTPUT_NAMES, load_model, model_overrides
from zoorepro.vilbert.preprocess import DTYPES, fit, select_questions
from zoorepro.vilbert.sources import activate, prepare_sources

REPO = Path(__file__).resolve().parents[1]
PARAMS = load_params()["vilbert"]  # what the shared build ran the steps with
N_IMAGES, N_QUESTIONS = PARAMS["mini"]["n_images"], PARAMS["mini"]["n_questions"]
PAD_LEN, BOX_NUM, SUBSET = PARAMS["pad_len"], PARAMS["box_num"], 5


# The rules' `threads:` (make_mini 1, preprocess every core), which Snakemake hands the job as
# OMP_NUM_THREADS and the BLAS thread variables: torch's and BLAS's float sums depend on the thread
# count, so a rerun compared byte for byte with the build's output runs with the same counts.
RULE_THREADS = {"make_mini": 1, "preprocess": os.cpu_count()}
THREAD_VARIABLES = ("OMP_NUM_THREADS", "GOTO_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def run_script(name: str, *args: object) -> str:
    """Run the step zoorepro.vilbert.<name> like a rule does; fail the test with its stderr."""
    threads = {var: str(RULE_THREADS[name]) for var in THREAD_VARIABLES} if name in RULE_THREADS else {}
    result = subprocess.run([sys.executable, "-m", f"zoorepro.vilbert.{name}", *map(str, args)],
                            cwd=REPO, capture_output=True, text=True, check=False, env={**os.environ, **threads})
    assert result.returncode == 0, f"{name} failed:\n{result.stderr[-4000:]}"
    return result.stdout


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_sample(folder: Path, i: int) -> dict[str, np.ndarray]:
    return {name: np.load(folder / name / f"{i}.npy") for name in DTYPES}


@pytest.fixture(scope="module")
def src(patched_src) -> Path:
    return patched_src


@pytest.fixture(scope="module")
def mini(tmp_path_factory, mini_stage, src) -> dict[str, Path]:
    """"a": the shared build's mini set (rule vilbert_mini_data); "b": the same generated again
    here by the script in a fresh process, as the rule runs it (one thread). (Not in this process:
    the planting's eager torch run depends on float summation order, and a test process whose
    other imports changed torch's threading can shape the answer head one rounding step apart —
    see the closing note of the planted-outcomes change.)"""
    root = tmp_path_factory.mktemp("mini")
    run_script("make_mini", "--out", root / "b", "--src", src, "--seed", PARAMS["mini"]["seed"],
               "--n-images", N_IMAGES, "--n-questions", N_QUESTIONS)
    return {"a": mini_stage("vilbert_data_mini") / "data/mini/vilbert", "b": root / "b"}


@pytest.fixture(scope="module")
def preprocessed(tmp_path_factory, mini_stage, mini, src) -> dict[str, Path]:
    """"first": the shared build's preprocessed samples (rule vilbert_preprocess, its feature cache
    beside them); "rerun": the first SUBSET questions again with a feature cache of their own (so
    their images are featurized again); "subset": the same subset with a copy of the build's
    feature cache, naming the image folder's parent as --image_dir."""
    build = mini_stage("vilbert_prepare_mini") / "work/mini/vilbert"
    root = tmp_path_factory.mktemp("work")
    shutil.copytree(build / "feature_cache", root / "one" / "feature_cache")
    data = mini["a"]
    runs = {"rerun": (root / "two" / "preprocessed", []),
            "subset": (root / "one" / "subset", ["--image_dir", data])}
    for save_dir, extra in runs.values():
        run_script("preprocess", "--archive_file", data / ARCHIVE, "--save_dir", save_dir, "--data_dir", data,
                   "--src", src, "--pad_len", PAD_LEN, "--box_num", BOX_NUM, "--question_subset", SUBSET, *extra)
    return {"first": build / "preprocessed", **{name: save_dir for name, (save_dir, _) in runs.items()}}


@pytest.fixture(scope="module")
def exported(mini_stage) -> Path:
    """The shared build's export (rule vilbert_export_onnx, params.yaml's opset)."""
    repo = mini_stage("vilbert_prepare_mini")
    path = repo / "work/mini/vilbert/onnx/vqa-vilbert.onnx"
    assert "max abs diff" in (repo / "logs/mini/vilbert/export_onnx.log").read_text()
    return path


# ---- sources ------------------------------------------------------------------------------------

def test_sources_record_versions_and_every_patch(src):
    manifest = json.loads((src / "SOURCES.json").read_text())
    assert {p["version"] for p in manifest["packages"].values()} == {"2.10.1"}
    patches = sorted(p.relative_to(REPO / "patches").as_posix() for p in (REPO / "patches").glob("allennlp*/*.patch"))
    assert [p["file"] for p in manifest["patches"]] == patches
    for entry in manifest["patches"]:
        assert entry["sha256"] == sha256(REPO / "patches" / entry["file"])
    forward = (src / "allennlp_models/vision/models/vilbert_vqa.py").read_text()
    assert "token_ids: torch.Tensor," in forward and "question: TextFieldTensors,\n" not in forward


def test_a_patch_that_does_not_apply_is_named_and_nothing_is_written(tmp_path):
    patches = tmp_path / "patches"
    (patches / "allennlp").mkdir(parents=True)
    (patches / "allennlp" / "01-bad.patch").write_text(
        "--- a/allennlp/version.py\n+++ b/allennlp/version.py\n@@ -1,1 +1,1 @@\n-no such line\n+x\n")
    with pytest.raises(ZooreproError, match="allennlp/01-bad.patch"):
        prepare_sources(tmp_path / "dest", patches)
    assert not (tmp_path / "dest").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["patches"]


def test_activate_refuses_a_folder_without_sources(tmp_path):
    with pytest.raises(ZooreproError, match="zoorepro.steps.sources --model vilbert"):
        activate(tmp_path)


def test_the_patched_region_detector_keeps_torchvisions_detections_and_each_ones_proposal_features(src):
    """patches/allennlp/07 gathers box features after NMS instead of expanding them per class first.
    Boxes, scores and labels must be torchvision's own RoIHeads.postprocess_detections' (the code
    allennlp adapted); each kept prediction's feature row must be its proposal's (what the expanded
    original indexed). Spread scores, as random weights give, so most predictions pass the threshold."""
    import torch
    from types import SimpleNamespace
    from allennlp.modules.vision.region_detector import FasterRcnnRegionDetector
    from torchvision.models.detection._utils import BoxCoder
    from torchvision.models.detection.roi_heads import RoIHeads
    from torchvision.ops import boxes as box_ops

    generator = torch.Generator().manual_seed(0)
    heads = SimpleNamespace(box_coder=BoxCoder((10.0, 10.0, 5.0, 5.0)), score_thresh=0.05, nms_thresh=0.5,
                            detections_per_img=40)
    n_classes, shapes, counts = 7, [(60, 80), (50, 50)], [120, 90]
    proposals = [torch.cat([xy := torch.rand(n, 2, generator=generator) * 40, xy + 5 + torch.rand(n, 2, generator=generator) * 20], 1)
                 for n in counts]
    logits = torch.randn(sum(counts), n_classes, generator=generator) * 3
    regression = torch.randn(sum(counts), n_classes * 4, generator=generator) * 0.2
    features = torch.randn(sum(counts), 16, generator=generator)
    detector = SimpleNamespace(detector=SimpleNamespace(roi_heads=heads))
    boxes, kept_features, scores, labels = FasterRcnnRegionDetector._postprocess_detections(
        detector, logits, features, regression, proposals, shapes)
    expected = RoIHeads.postprocess_detections(heads, logits, regression, proposals, shapes)
    decoded = heads.box_coder.decode(regression, proposals).split(counts)
    for i, (e_boxes, e_scores, e_labels) in enumerate(zip(*expected)):
        assert torch.equal(boxes[i], e_boxes) and torch.equal(scores[i], e_scores) and torch.equal(labels[i], e_labels)
        assert 10 < len(boxes[i]) <= heads.detections_per_img
        clipped = box_ops.clip_boxes_to_image(decoded[i], shapes[i])
        own = features.split(counts)[i]
        for box, label, row in zip(boxes[i], labels[i], kept_features[i]):
            (proposal,) = torch.nonzero((clipped[:, label] == box).all(-1))[:, 0].tolist()
            assert torch.equal(row, own[proposal])



# ---- mini data ----------------------------------------------------------------------------------

def test_mini_generation_is_byte_identical_across_runs(mini):
    first, second = (mini[k] / MANIFEST for k in ("a", "b"))
    assert first.read_bytes() == second.read_bytes()
    files = json.loads(first.read_text())["files"]
    on_disk = sorted(p.relative_to(mini["a"]).as_posix() for p in mini["a"].rglob("*") if p.is_file())
    assert sorted([*files, MANIFEST]) == sorted(on_disk)
    for name, digest in files.items():
        assert sha256(mini["a"] / name) == digest, name


def test_mini_vqa_files_follow_the_official_layout(mini):
    questions = json.loads((mini["a"] / QUESTIONS_FILE).read_text())
    annotations = json.loads((mini["a"] / "v2_mscoco_val2014_annotations.json").read_text())
    assert questions["data_subtype"] == annotations["data_subtype"] == "val2014"
    assert {"info", "task_type", "data_type", "license"} <= questions.keys()
    assert len(questions["questions"]) == len(annotations["annotations"]) == N_QUESTIONS
    ids = [q["question_id"] for q in questions["questions"]]
    assert len(set(ids)) == N_QUESTIONS and ids != sorted(ids)  # consumers must sort themselves
    images = {int(p.stem[-12:]) for p in (mini["a"] / "val2014").glob("COCO_val2014_*.jpg")}
    assert len(images) == N_IMAGES and {q["image_id"] for q in questions["questions"]} == images
    for ann in annotations["annotations"]:
        assert [a["answer_id"] for a in ann["answers"]] == list(range(1, 11))
        assert {"question_type", "multiple_choice_answer", "answer_type", "image_id"} <= ann.keys()


def test_mini_archive_is_reproducible_and_has_no_machine_paths(mini):
    with tarfile.open(mini["a"] / ARCHIVE) as tar:
        members = tar.getmembers()
        config = json.load(tar.extractfile("config.json"))
    assert sorted(m.name for m in members) == ["config.json", "vocabulary/answers.txt",
                                               "vocabulary/non_padded_namespaces.txt", "weights.th"]
    assert all(m.mtime == 0 and m.uid == 0 and m.uname == "" for m in members)

    def strings(node):
        if isinstance(node, dict):
            return [s for v in node.values() for s in strings(v)]
        if isinstance(node, list):
            return [s for v in node for s in strings(v)]
        return [node] if isinstance(node, str) else []
    assert not [s for s in strings(config) if s.startswith("/")]
    assert config["validation_dataset_reader"]["type"] == "vqav2"
    assert config["model"]["type"] == "vqa_vilbert"


# ---- preprocess ---------------------------------------------------------------------------------

def test_preprocess_writes_the_design_layout_once_per_question(preprocessed, mini):
    folder = preprocessed["first"]
    questions = json.loads((mini["a"] / QUESTIONS_FILE).read_text())["questions"]
    index = json.loads((folder / "index.json").read_text())
    assert index["question_ids"] == sorted(q["question_id"] for q in questions)
    # the samples, their index, and the folder's lineage record (zoorepro/lineage.py)
    # (and the timestamp Snakemake keeps in a directory output)
    assert sorted(p.name for p in folder.iterdir()) == sorted([*DTYPES, "index.json", ".lineage.json",
                                                                ".snakemake_timestamp"])
    fixed = {"box_features": (1, BOX_NUM, 1024), "box_coordinates": (1, BOX_NUM, 4), "box_mask": (1, BOX_NUM),
             "token_ids": (1, PAD_LEN), "mask": (1, PAD_LEN), "type_ids": (1, PAD_LEN)}
    for name, dtype in DTYPES.items():
        assert sorted(p.name for p in (folder / name).iterdir()) == sorted(f"{i}.npy" for i in range(N_QUESTIONS))
        for i in range(N_QUESTIONS):
            array = np.load(folder / name / f"{i}.npy")
            assert array.dtype == dtype, (name, i)
            if name in fixed:
                assert array.shape == fixed[name], (name, i)
    for i in range(N_QUESTIONS):
        sample = load_sample(folder, i)
        assert sample["labels"].shape == sample["label_weights"].shape and sample["labels"].shape[0] == 1
        assert sample["box_mask"].any()
        assert not sample["box_features"][~sample["box_mask"]].any()


def test_preprocess_labels_and_tokens_follow_the_annotations(preprocessed, mini):
    from allennlp_models.vision.dataset_readers.utils import preprocess_answer
    from transformers import AutoTokenizer

    folder = preprocessed["first"]
    questions = {q["question_id"]: q for q in json.loads((mini["a"] / QUESTIONS_FILE).read_text())["questions"]}
    annotations = {a["question_id"]: a for a in
                   json.loads((mini["a"] / "v2_mscoco_val2014_annotations.json").read_text())["annotations"]}
    with tarfile.open(mini["a"] / ARCHIVE) as tar:
        answers = tar.extractfile("vocabulary/answers.txt").read().decode().splitlines()
    answer_index = {a: i + 1 for i, a in enumerate(answers)}  # 0 is padding, answers.txt starts at OOV (1)
    tokenizer = AutoTokenizer.from_pretrained(str(mini["a"] / TOKENIZER_DIR))
    question_ids = json.loads((folder / "index.json").read_text())["question_ids"]
    saw_oov = False
    for i, qid in enumerate(question_ids):
        sample = load_sample(folder, i)
        counts = Counter(preprocess_answer(a["answer"]) for a in annotations[qid]["answers"])
        expected_labels = [answer_index.get(a, 1) for a in counts]
        assert sample["labels"][0].tolist() == expected_labels, qid
        np.testing.assert_allclose(sample["label_weights"][0], [min(1.0, n / 3) for n in counts.values()])
        saw_oov |= 1 in expected_labels
        ids = tokenizer(questions[qid]["question"])["input_ids"]
        assert sample["token_ids"][0, :len(ids)].tolist() == ids
        assert sample["mask"][0].tolist() == [True] * len(ids) + [False] * (PAD_LEN - len(ids))
        assert not sample["token_ids"][0, len(ids):].any() and not sample["type_ids"].any()
    assert saw_oov, "the mini set should exercise the out-of-vocabulary label"


def test_preprocess_reruns_give_identical_bytes(preprocessed):
    """A second run, featurizing its images again into a cache of its own, writes the same bytes
    for the same questions."""
    first, rerun = preprocessed["first"], preprocessed["rerun"]
    files = sorted(p.relative_to(rerun) for p in rerun.rglob("*") if p.is_file() and p.name != ".lineage.json")
    assert files == sorted([*(Path(name, f"{i}.npy") for name in DTYPES for i in range(SUBSET)), Path("index.json")])
    for name in files:
        if name.name != "index.json":
            assert (first / name).read_bytes() == (rerun / name).read_bytes(), name
    assert len(list((rerun.parent / "feature_cache").iterdir())) == 1  # it made a cache of its own


def test_question_subset_takes_the_lowest_ids_and_reuses_the_feature_cache(preprocessed):
    full, subset = preprocessed["first"], preprocessed["subset"]
    full_ids = json.loads((full / "index.json").read_text())["question_ids"]
    assert json.loads((subset / "index.json").read_text())["question_ids"] == full_ids[:SUBSET]
    for i in range(SUBSET):
        for name in DTYPES:
            assert (full / name / f"{i}.npy").read_bytes() == (subset / name / f"{i}.npy").read_bytes()
    # the build's cache (copied beside the subset) served it: no second cache key was made
    assert [p.name for p in (subset.parent / "feature_cache").iterdir()] == \
        [p.name for p in (full.parent / "feature_cache").iterdir()]
    assert not [p for p in subset.parent.iterdir() if p.name.startswith(".")]  # no temp leftovers
    assert not [p for p in full.parent.iterdir() if p.name.startswith(".")]


def test_select_questions_refuses_an_empty_subset(mini):
    with pytest.raises(ZooreproError, match="question_subset"):
        select_questions(mini["a"], 0)


def test_fit_pads_with_zeros_truncates_and_keeps_dtype():
    mask = np.ones((1, 3), dtype=bool)
    assert fit(mask, 5).tolist() == [[True, True, True, False, False]] and fit(mask, 5).dtype == bool
    features = np.arange(12, dtype=np.float32).reshape(1, 3, 4)
    assert fit(features, 2).shape == (1, 2, 4) and fit(features, 2).dtype == np.float32
    assert not fit(features, 6)[:, 3:].any()
    assert fit(features, -1) is features


# ---- export -------------------------------------------------------------------------------------

def test_exported_model_has_the_documents_signature(exported, mini):
    model = onnx.load(str(exported))
    onnx.checker.check_model(model)
    inputs = {i.name: i.type.tensor_type for i in model.graph.input}
    assert list(inputs) == list(INPUT_NAMES)
    T = onnx.TensorProto
    assert [inputs[n].elem_type for n in INPUT_NAMES] == [T.FLOAT, T.FLOAT, T.BOOL, T.INT64, T.BOOL, T.INT64]

    def dims(tensor_type):
        return [d.dim_param or d.dim_value for d in tensor_type.shape.dim]
    assert dims(inputs["box_features"]) == ["batch_size", "box_num", 1024]
    assert dims(inputs["box_coordinates"]) == ["batch_size", "box_num", 4]
    assert dims(inputs["box_mask"]) == ["batch_size", "box_num"]
    for name in ("token_ids", "mask", "type_ids"):
        assert dims(inputs[name]) == ["batch_size", "seq_len"]
    with tarfile.open(mini["a"] / ARCHIVE) as tar:
        n_answers = 1 + len(tar.extractfile("vocabulary/answers.txt").read().decode().splitlines())
    outputs = {o.name: dims(o.type.tensor_type) for o in model.graph.output}
    assert outputs == {name: ["batch_size", n_answers] for name in OUTPUT_NAMES}


def test_onnxruntime_matches_torch_on_preprocessed_samples(exported, preprocessed, mini, src):
    import torch

    folder = preprocessed["first"]
    samples = [load_sample(folder, i) for i in range(4)]
    batch = {name: np.concatenate([s[name] for s in samples]) for name in INPUT_NAMES}
    session = onnxruntime.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    got = dict(zip(OUTPUT_NAMES, session.run(list(OUTPUT_NAMES), batch)))
    model = load_model(mini["a"] / ARCHIVE, src)
    with torch.no_grad():
        want = model(**{name: torch.from_numpy(array) for name, array in batch.items()})
    for name in OUTPUT_NAMES:
        np.testing.assert_allclose(got[name], want[name].numpy(), atol=1e-4, rtol=0)
    assert np.ptp(got["logits"], axis=0).max() > 0  # the samples are told apart


def test_eager_reference_is_saved_and_matches_onnxruntime(exported):
    reference = np.load(f"{exported}.eager.npz")
    assert sorted(reference.files) == sorted([*INPUT_NAMES, *OUTPUT_NAMES])
    assert reference["box_mask"].dtype == bool and reference["token_ids"].dtype == np.int64
    assert not reference["box_mask"].all()  # the reference input exercises masking
    session = onnxruntime.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    got = session.run(list(OUTPUT_NAMES), {name: reference[name] for name in INPUT_NAMES})
    for name, array in zip(OUTPUT_NAMES, got):
        np.testing.assert_allclose(array, reference[name], atol=1e-4, rtol=0)


def test_model_overrides_point_a_hugging_face_model_name_at_a_local_copy(tmp_path):
    assert model_overrides({"model": {"type": "vqa_vilbert"}}, None) == {}
    config = {"model": {"type": "vqa_vilbert_from_huggingface", "model_name": "bert-base-uncased"}}
    with pytest.raises(ZooreproError, match="bert-base-uncased"):
        model_overrides(config, None)
    assert model_overrides(config, tmp_path) == {"model.model_name": str(tmp_path.resolve())}
