"""LLaVA-NeXT-Video's data side: Video-Bench formats and prompt strings (videobench.py), the seeded
sampling (extract_dataset.py), the tiny checkpoints (make_mini_model.py) and the mini generator with
its planted outcomes (make_mini_data.py, plant.py)."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from zoorepro.errors import ZooreproError
from zoorepro.llava_video import extract_dataset as ex
from zoorepro.llava_video import videobench as vb

CHOICES = {"A": "red", "B": "blue", "C": "cat", "D": "dog", "E": "car", "F": "road"}
TAIL = "the one closest to the correct answer is:"


@pytest.mark.parametrize("n, expected", [
    (1, "Q?"),
    (2, f"Q? A.red B.blue \n Among the two options A, B above, {TAIL} "),
    (3, f"Q? A.red B.blue C.cat \n Among the three options A, B, C above, {TAIL} "),
    (4, f"Q? A.red B.blue C.cat D.dog \n Among the four options A, B, C, D above, {TAIL}"),
    (5, f"Q? A.red B.blue C.cat D.dog E.car \n Among the five options A, B, C, D, E above, {TAIL} "),
    (6, f"Q?Choices: A.red B.blue C.cat D.dog E.car F.road \n Among the six options A, B, C, D, E, F above, {TAIL}"),
])
def test_process_qs_exact_strings(n, expected):
    item = {"question": "Q?", "choices": {k: CHOICES[k] for k in "ABCDEF"[:n]}, "vid_path": "Eval_video/MOT/x.mp4"}
    question, path = vb.process_qs(item, "root")
    assert question == expected
    assert path == os.path.join("root", "Eval_video/MOT/x.mp4")


def test_prompt_joins():
    vicuna = "USER: <video>\nQ? ASSISTANT:"
    assert vb.gpu_prompt(vicuna) == "USER: <video>\nQ? " + vb.PROMPT_SUFFIX + " ASSISTANT:"
    assert vb.gpu_prompt("[INST] <video>\nQ? [/INST]") == "[INST] <video>\nQ? [/INST]" + vb.PROMPT_SUFFIX + " ASSISTANT:"
    assert vb.npu_prompt("Q?") == "USER: <video>\nQ? " + vb.PROMPT_SUFFIX + " ASSISTANT:"
    assert vb.cut_answer("USER: x ASSISTANT: C.") == " C."
    assert vb.cut_answer("0123456789abc") == "9abc"  # no marker: upstream slices from index 9


def test_videobench_score_weights_and_renormalisation():
    full = {s: 50.0 for s in vb.SUBSETS}
    assert vb.videobench_score(full)["final"] == pytest.approx(50.0)
    acc = {**full, "MOT": 0.0}  # level1: (6*50 + 0.5*0) / 6.5
    assert vb.videobench_score(acc)["levels"]["level1"] == pytest.approx(300 / 6.5)
    part = {"TVQA": 60.0, "MSVD": 20.0}
    score = vb.videobench_score(part)
    assert score["renormalised"] and "Ucfcrime" in score["missing"] and score["final"] == pytest.approx(40.0)
    with pytest.raises(ZooreproError, match="not Video-Bench subsets"):
        vb.videobench_score({"Nope": 1.0})


# --------------------------------------------------------------------------------------------
# sampling on a hand-made tree: every subset one or two questions, numeric keys colliding


def _tree(root: Path, with_videos: bool = True) -> tuple[Path, Path, Path]:
    qa_root, video_root = root / "Video-Bench", root / "VideoBench"
    (qa_root / "Eval_QA").mkdir(parents=True)
    answers = {}
    for i, subset in enumerate(vb.SUBSETS):
        keys = ["0", "1"] if subset in ("Ucfcrime", "NBA", "MV", "MOT") else [f"{subset}_q0"]
        items = {}
        for j, key in enumerate(keys):
            name = f"{subset}_{j}{vb.VIDEO_EXT[subset]}"
            items[key] = {"vid_path": f"Eval_video/{subset}/{name}", "video_id": name, "question": "Q?",
                          "choices": {"A": "x", "B": "y"}}
            if with_videos:
                path = video_root / "Eval_video" / subset / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(f"{subset}{j}".encode())
        (qa_root / "Eval_QA" / f"{subset}_QA_new.json").write_text(json.dumps(items))
        answers[subset] = {k: {"answer": "A"} for k in keys}
    (qa_root / "ANSWER.json").write_text(json.dumps(answers))
    return qa_root, video_root, qa_root / "ANSWER.json"


def _extract(tmp_path, qa_root, video_root, answers, out="s", nums=5, seed=3, merge="qualified"):
    s = tmp_path / out
    counts = ex.extract(qa_root, video_root, s / "VideoBench/Eval_video", s / "Video-Bench/Eval_QA", answers,
                        nums, seed, merge)
    return s, counts


def test_extract_fixed_mode_seeded_qualified_real_files(tmp_path):
    qa_root, video_root, answers = _tree(tmp_path / "d")
    s1, _ = _extract(tmp_path, qa_root, video_root, answers, "s1", nums=17)  # the whole pool
    s2, _ = _extract(tmp_path, qa_root, video_root, answers, "s2", nums=17)
    qa1 = (s1 / "Video-Bench/Eval_QA" / vb.SAMPLED_QA).read_bytes()
    assert qa1 == (s2 / "Video-Bench/Eval_QA" / vb.SAMPLED_QA).read_bytes()
    sampled = json.loads(qa1)
    assert {"Ucfcrime/0", "MV/0", "MOT/0", "NBA/1"} <= set(sampled)  # no collisions in the fixed mode
    assert sampled["MOT/0"]["dataset"] == "MOT"
    assert sampled["MOT/0"]["vid_path"] == "Eval_video/sampling_data/MOT_0.mp4"
    got = json.loads((s1 / "Video-Bench/Eval_QA" / vb.SAMPLED_ANSWERS).read_text())
    assert got["MOT"]["0"] == {"answer": "A"}
    video = s1 / "VideoBench/Eval_video/sampling_data/MOT_0.mp4"
    assert video.is_file() and not video.is_symlink() and video.read_bytes() == b"MOT0"
    assert video.stat().st_ino != (video_root / "Eval_video/MOT/MOT_0.mp4").stat().st_ino
    s3, _ = _extract(tmp_path, qa_root, video_root, answers, "s3", nums=5, seed=4)
    assert len(json.loads((s3 / "Video-Bench/Eval_QA" / vb.SAMPLED_QA).read_text())) == 5


def test_extract_upstream_mode_collisions(tmp_path):
    qa_root, video_root, answers = _tree(tmp_path / "d")
    merged = ex.pool(vb.load_eval_qa(qa_root), "upstream")
    assert merged["0"][0] == "MOT" and merged["1"][0] == "MOT"  # Ucfcrime, NBA, MV overwritten
    assert len(merged) == 13 - 4 + 2
    s, counts = _extract(tmp_path, qa_root, video_root, answers, nums=len(merged), merge="upstream")
    assert not {"Ucfcrime", "NBA", "MV"} & set(counts)
    sampled = json.loads((s / "Video-Bench/Eval_QA" / vb.SAMPLED_QA).read_text())
    assert sampled["0"]["dataset"] == "MOT"


def test_extract_missing_video_names_it_and_writes_nothing(tmp_path):
    qa_root, video_root, answers = _tree(tmp_path / "d")
    (video_root / "Eval_video/TVQA/TVQA_0.mp4").unlink()
    with pytest.raises(ZooreproError, match="TVQA/TVQA_q0.*TVQA_0.mp4"):
        _extract(tmp_path, qa_root, video_root, answers, nums=17)
    assert not (tmp_path / "s").exists()


def test_extract_nums_larger_than_pool(tmp_path):
    qa_root, video_root, answers = _tree(tmp_path / "d")
    with pytest.raises(ZooreproError, match="18 questions from a pool of 17"):
        _extract(tmp_path, qa_root, video_root, answers, nums=18)


def test_answer_json_without_a_subset(tmp_path):
    qa_root, video_root, answers = _tree(tmp_path / "d")
    data = json.loads(answers.read_text())
    del data["TGIF"]
    answers.write_text(json.dumps(data))
    with pytest.raises(ZooreproError, match="no answers for subset 'TGIF'"):
        _extract(tmp_path, qa_root, video_root, answers, nums=17)
    assert not (tmp_path / "s").exists()


# --------------------------------------------------------------------------------------------
# the mini generator (reduced: one question a subset, two checkpoints of two families)


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    from zoorepro.llava_video.make_mini_data import make_mini

    root = tmp_path_factory.mktemp("llava_mini")
    kwargs = dict(seed=1, per_subset=1, max_new_tokens=3, checkpoints=("7B", "34B"))
    manifests = [make_mini(root / name, **kwargs) for name in ("a", "b")]
    return root, manifests


def test_mini_is_deterministic(mini):
    root, (a, b) = mini
    assert a["files"] == b["files"]
    assert any(p.endswith(".avi") for p in a["files"]) and any(p.endswith("model.safetensors") for p in a["files"])


def test_mini_planted_values_non_degenerate(mini):
    from zoorepro.claims import load_planted

    root, (manifest, _) = mini
    claims = load_planted(root / "a" / "planted_claims.yaml")
    assert {(c.metric, c.target) for c in claims} >= {("7B accuracy", "cpu"), ("7B accuracy", "npu"),
                                                       ("34B Video-Bench final score", "cpu")}
    assert all(c.unit == "percent" for c in claims)
    # accuracies and scores are non-degenerate; the NPU-GPU gap and agreement may be 0 / 100 (the
    # vicuna checkpoints see the same prompt on both sides)
    assert all(0 < c.value < 100 for c in claims if "NPU-GPU" not in c.metric)
    assert manifest["planted"]["min_margin_seen"] >= 0.4
    answers = vb.load_answers(root / "a/Video-Bench/ANSWER.json")
    assert set(answers) == set(vb.SUBSETS)


def test_mini_checkpoint_reloads_offline(mini):
    from zoorepro.llava_video.make_mini_model import load_checkpoint

    root, _ = mini
    model, processor = load_checkpoint(root / "a/models/LLaVA-NeXT-Video-34B-hf")
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert "<|im_start|>assistant" in processor.apply_chat_template(
        vb.gpu_conversation("Q?"), add_generation_prompt=True)
    assert model.config.text_config.hidden_size == 32


def test_checkpoint_without_processor_config(mini, tmp_path):
    from zoorepro.llava_video.make_mini_model import load_checkpoint

    root, _ = mini
    broken = tmp_path / "ckpt"
    shutil.copytree(root / "a/models/LLaVA-NeXT-Video-7B-hf", broken)
    (broken / "processor_config.json").unlink()
    with pytest.raises(ZooreproError, match="missing: processor config"):
        load_checkpoint(broken)


def test_corrupt_video_is_one_clear_error(mini, tmp_path):
    from zoorepro.llava_video.plant import decode_frames

    root, _ = mini
    src = root / "a/VideoBench/Eval_video/TVQA/s01e00_seg02.mp4"
    assert decode_frames(src).shape == (8, 48, 64, 3)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(src.read_bytes()[: len(src.read_bytes()) // 3])
    with pytest.raises(ZooreproError, match="bad.mp4"):
        decode_frames(bad)


def test_mini_sample_extracts(mini, tmp_path):
    root, (manifest, _) = mini
    d = root / "a"
    s, counts = _extract(tmp_path, d / "Video-Bench", d / "VideoBench", d / "Video-Bench/ANSWER.json",
                         nums=manifest["planted"]["n_questions"], seed=0)
    assert sum(counts.values()) == 13 and len(counts) == 13
