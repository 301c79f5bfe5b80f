"""The project's own steps around the document's (zoorepro/clipbert/): select_videos (a partial,
deterministic full-scale run; every video checked before anything is written), make_config (the
document's run config from params), and the full-scale data check that names what is missing and
where to get it."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from test_clipbert_data import A, B, C, D, E, write_dataset

from zoorepro.clipbert.check_anetqa import ANETQA_SITE, check
from zoorepro.clipbert.make_config import make_config
from zoorepro.clipbert.run_video_qa import REQUIRED
from zoorepro.clipbert.select_videos import select
from zoorepro.config import load_params
from zoorepro.errors import ConfigError, ZooreproError


def videos(root: Path, ids) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for vid in ids:
        (root / f"{vid}.mp4").write_bytes(b"not decoded here")
    return root


def test_select_copies_everything_or_keeps_the_first_videos_by_id(tmp_path):
    dataset = write_dataset(tmp_path / "dataset")
    (dataset / "meta/video_train.json").write_text(json.dumps([B, A]))
    video_dir = videos(tmp_path / "video", [A, B, C, D, E])
    assert select(dataset, video_dir, tmp_path / "all", None) == {"train": (2, 3), "val": (2, 4), "test": (1, 1)}
    for name in ("qa/qa_train.json", "qa/qa_val.json", "qa/q_test.json", "meta/video_train.json"):
        assert json.loads((tmp_path / "all" / name).read_text()) == json.loads((dataset / name).read_text())
    assert (tmp_path / "all/.lineage.json").is_file()
    assert select(dataset, video_dir, tmp_path / "one", 1) == {"train": (1, 2), "val": (1, 2), "test": (1, 1)}
    assert json.loads((tmp_path / "one/meta/video_train.json").read_text()) == [A]   # ascending id, not list order
    kept = json.loads((tmp_path / "one/qa/qa_val.json").read_text())
    assert {q["qa_id"][:13] for q in kept} == {C} and all("taxonomy" in q for q in kept)


def test_a_missing_video_is_named_before_anything_is_written(tmp_path):
    dataset = write_dataset(tmp_path / "dataset")
    (dataset / "meta/video_train.json").write_text(json.dumps([B, A]))
    video_dir = videos(tmp_path / "video", [A, B, C, E])
    with pytest.raises(ZooreproError, match=D):
        select(dataset, video_dir, tmp_path / "out", None)
    assert not (tmp_path / "out").exists()


def test_make_config_takes_params_hyperparameters_and_the_runs_paths(tmp_path):
    hyper = load_params()["clipbert"]["finetune"]["full"]
    paths = {"train_txt_db": "t.jsonl", "val_txt_db": "v.jsonl", "img_db": "img", "ans2label_path": "a.json",
             "tokenizer_dir": str(tmp_path / "bert"), "model_config": "base", "e2e_weights_path": "e2e.pt"}
    with pytest.raises(ConfigError, match="no vocab.txt"):   # before any frame is sampled
        make_config(hyper, paths, tmp_path / "anetqa_frameqa_base_resnet50.json")
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert/vocab.txt").write_text("[PAD]\n")
    config = make_config(hyper, paths, tmp_path / "anetqa_frameqa_base_resnet50.json")
    assert set(REQUIRED) <= set(config)
    assert (config["train_batch_size"], config["num_train_epochs"], config["learning_rate"], config["betas"],
            config["grad_norm"], config["fp16"], config["seed"]) == (32, 15, 5e-5, [0.9, 0.98], 5.0, 1, 42)
    model_config = json.loads((tmp_path / "model_config.json").read_text())
    assert config["model_config"] == str(tmp_path / "model_config.json") and model_config["hidden_size"] == 768
    assert json.loads((tmp_path / "anetqa_frameqa_base_resnet50.json").read_text()) == config
    with pytest.raises(ConfigError, match="lacks learning_rate"):
        make_config({k: v for k, v in hyper.items() if k != "learning_rate"}, paths, tmp_path / "c.json")
    with pytest.raises(ConfigError, match="names paths"):
        make_config({**hyper, "img_db": "elsewhere"}, paths, tmp_path / "c.json")


def test_full_scale_without_the_anetqa_release_says_where_to_get_it(tmp_path):
    dataset = tmp_path / "dataset"
    with pytest.raises(ZooreproError) as err:
        check(dataset)
    assert ANETQA_SITE in str(err.value) and "qa/qa_train.json" in str(err.value) and "video" in str(err.value)
    assert "results/mini/clipbert_cpu.csv" in str(err.value)
    write_dataset(dataset)
    videos(dataset / "video", [A, B, C])
    record = check(dataset)
    assert record["splits"]["val"] == {"videos": 2, "questions": 4} and record["video_files"] == 3
    assert set(record["sha256"]) == {"qa/qa_train.json", "qa/qa_val.json", "qa/q_test.json", "meta/video_train.json",
                                     "meta/video_val.json", "meta/video_test.json"}


def test_the_full_scale_paths_are_where_the_downloads_put_their_files():
    from zoorepro.clipbert.inputs import paths
    from zoorepro.download.manifest import load_manifest

    root = Path("data/full/clipbert")
    outputs = [entry.output(root) for entry in load_manifest(Path(__file__).parents[1] / "manifests/clipbert.yaml")]
    full = paths("full")
    for name in ("ans2label", "tokenizer", "e2e_weights"):
        assert any(Path(full[name]) == out or out in Path(full[name]).parents for out in outputs), name
    assert Path(full["tokenizer"]) in outputs   # bert-base-uncased.tar unpacked as ClipBERT's script does
    assert Path(full["videos"]).parent == Path(full["dataset"])   # anetqa-code's dataset/ layout


def test_the_full_data_inputs_are_the_downloads_and_the_release_check():
    from zoorepro.clipbert.inputs import ANETQA_RELEASE, Inputs

    inputs = Inputs(load_params())
    assert sorted(inputs.data(SimpleNamespace(scale="full"))) == [
        "anetqa", "download_anetqa_ans2label", "download_bert_base_uncased",
        "download_clipbert_image_text_pretrained", "download_grid_feat_r50"]
    assert inputs.data(SimpleNamespace(scale="full"))["anetqa"] == ANETQA_RELEASE
