"""run_video_qa's finetune (zoorepro/clipbert/run_video_qa.py) on a tiny ANetQA set: frames sampled
from real video files, aux_csv/aux_jsonl, a few real steps in 2 processes under torchrun (gloo),
ClipBERT's output layout. Inference and eval_res on a checkpoint: tests/test_clipbert_mini.py."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_clipbert_data import A, B, C, D, E, write_dataset
from test_clipbert_frames import write_video

from zoorepro.clipbert.aux_csv import aux_csv
from zoorepro.clipbert.aux_jsonl import aux_jsonl
from zoorepro.clipbert.model import BASE_MODEL
from zoorepro.clipbert.sample_imgs_clipbert import sample_all

WORDS = ["question", "about", "v", "_", "a", "b", "c", "d", "e", "?", "1", "2", "##a", "##b", "##c", "##d", "##e"]


def setup(root: Path) -> Path:
    dataset = write_dataset(root / "dataset")
    (dataset / "meta/video_train.json").write_text(json.dumps([B, A]))
    for vid, n in ((A, 24), (B, 20), (C, 32), (D, 17), (E, 16)):
        write_video(root / "videos" / f"{vid}.mp4", n)
    sample_all(root / "videos", dataset / "meta", root / "img", seed=1, size=96)
    aux_csv(dataset / "qa", dataset / "meta", root / "csv")
    aux_jsonl(root / "csv", root / "txt")
    answers = ["<UNK>", "yes", "no", "white", "dog", "red", "blue"]
    (root / "txt/ans2label.json").write_text(json.dumps({a: i for i, a in enumerate(answers)}, indent=4))
    (root / "bert").mkdir()
    (root / "bert/vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    model_config = {**BASE_MODEL, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
                    "intermediate_size": 32, "vocab_size": 5 + len(WORDS), "backbone_channel_in_size": 64,
                    "max_position_embeddings": 64}
    (root / "model_config.json").write_text(json.dumps(model_config))
    config = {"train_txt_db": str(root / "txt/data_train.jsonl"), "val_txt_db": str(root / "txt/data_val.jsonl"),
              "img_db": str(root / "img"), "ans2label_path": str(root / "txt/ans2label.json"),
              "tokenizer_dir": str(root / "bert"), "model_config": str(root / "model_config.json"),
              "e2e_weights_path": None, "max_txt_len": 12, "max_img_size": 128, "num_frm": 2, "train_n_clips": 4,
              "train_batch_size": 1, "val_batch_size": 2, "num_train_epochs": 4, "num_valid": 2, "min_valid_steps": 2,
              "learning_rate": 1e-3, "weight_decay": 1e-3, "betas": [0.9, 0.98], "grad_norm": 5.0, "warmup_ratio": 0.1,
              "cnn_learning_rate": 1e-3, "cnn_weight_decay": 1e-3, "seed": 42, "fp16": 1, "score_agg_func": "mean"}
    (root / "run.json").write_text(json.dumps(config))
    return root


def step(*args, nproc: int = 1) -> subprocess.CompletedProcess:
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc)] if nproc > 1 else []
    done = subprocess.run([sys.executable, *launcher, "-m", "zoorepro.clipbert.run_video_qa", *map(str, args)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory) -> Path:
    root = setup(tmp_path_factory.mktemp("clipbert"))
    step("--config", root / "run.json", "--output_dir", root / "result", "--measurements", root / "ft.json", nproc=2)
    return root


def test_finetune_in_two_processes_writes_clipberts_layout(finetuned):
    out = finetuned / "result"
    args = json.loads((out / "log/args.json").read_text())
    # 3 train questions, 2 processes x batch 1: ceil(4 * 3 / 2) = 6 steps; validation every
    # ceil(6 / num_valid 2 / min_valid_steps 2) * 2 = 4 steps, and after the last
    assert args["n_gpu"] == 2 and args["num_train_steps"] == 6 and args["valid_steps"] == 4
    assert sorted(p.name for p in (out / "ckpt").iterdir()) == ["model_step_4.pt", "model_step_6.pt"]
    assert json.loads((out / "log/model_config.json").read_text())["hidden_size"] == 16
    val = json.loads((out / "val_4.json").read_text())
    assert sorted(v["question_id"] for v in val) == sorted(f"{v}#attrWhat#{n}" for v in (C, D) for n in (1, 2))
    rows = {r["metric"]: r for r in json.loads((finetuned / "ft.json").read_text())}
    assert rows["finetune samples/s"]["value"] > 0 and 0 <= rows["finetune data loading share"]["value"] <= 100
