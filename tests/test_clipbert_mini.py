"""The mini ClipBERT chain can tell right from wrong: the generator's planted release answered by
the pipeline's steps (sample_imgs_clipbert -> aux_csv -> aux_jsonl -> run_video_qa inference with 16
clips -> eval_res) reproduces every planted accuracy; frames fed in BGR order or the first clip
scored alone change the answers and break them."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from zoorepro.clipbert.aux_csv import aux_csv
from zoorepro.clipbert.aux_jsonl import aux_jsonl
from zoorepro.clipbert.eval_res import measurements, score
from zoorepro.clipbert.sample_imgs_clipbert import sample_all


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("clipbert_mini")
    mini = root / "mini"
    done = subprocess.run([sys.executable, "-m", "zoorepro.clipbert.make_mini_data", "--out", str(mini)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    sample_all(mini / "videos", mini / "dataset/meta", root / "img", seed=42, size=96)
    aux_csv(mini / "dataset/qa", mini / "dataset/meta", root / "csv")
    aux_jsonl(root / "csv", root / "txt")
    config = {"ans2label_path": str(mini / "txt/anetqa_trainval_ans2label.json"), "img_db": str(root / "img"),
              "tokenizer_dir": str(mini / "pretrained/bert-base-uncased")}
    (root / "run.json").write_text(json.dumps(config))
    return root


def infer(chain: Path, fault: str) -> Path:
    """run_video_qa's inference in this process (the step's own argument parser)."""
    from zoorepro.clipbert.run_video_qa import parser, run

    out = chain / f"result_{fault}"
    shutil.copytree(chain / "mini/released", out)
    step = json.loads((chain / "mini/planted.json").read_text())["released_step"]
    run(parser().parse_args(["--config", str(chain / "run.json"), "--output_dir", str(out), "--do_inference", "1",
                             "--inference_split", "val", "--inference_model_step", str(step), "--inference_txt_db",
                             str(chain / "txt/data_val.jsonl"), "--inference_batch_size", "64",
                             "--inference_n_clips", "16", "--fault", fault]))
    return out / f"results_data_val/step_{step}_16_mean/results_all.json"


def reproduced(chain: Path, results: Path) -> dict[str, float]:
    result = score(chain / "mini/dataset/qa/qa_val.json", results)
    return {m.metric: m.value for m in measurements(result, ())}


def test_the_pipeline_reproduces_every_planted_accuracy(chain):
    planted = json.loads((chain / "mini/planted.json").read_text())["metrics"]
    assert 0 < planted["accuracy"] < 100 and len(planted) > 8
    results = infer(chain, "none")
    assert reproduced(chain, results) == pytest.approx(planted, abs=1e-9)
    assert sorted(p.name for p in results.parent.iterdir()) == [".lineage.json", "merged_args.json", "raw_args.json",
                                                                "results_all.json", "scores.json"]
    assert json.loads((results.parent / "scores.json").read_text()) == {"overall_acc": round(planted["accuracy"], 2)}


@pytest.mark.parametrize("fault", ["bgr-frames", "first-clip"])
def test_an_injected_fault_breaks_the_planted_accuracy(chain, fault):
    planted = json.loads((chain / "mini/planted.json").read_text())["metrics"]
    assert reproduced(chain, infer(chain, fault))["accuracy"] != pytest.approx(planted["accuracy"], abs=0.5)


@pytest.fixture(scope="module")
def released(chain):
    """The planted release loaded as inference loads it, and the val batches' loader:
    (model, answer list, loader)."""
    from zoorepro.clipbert.model import load_checkpoint
    from zoorepro.clipbert.run_video_qa import Ranks, build, loader

    folder = chain / "mini/released"
    cfg = {**json.loads((folder / "log/args.json").read_text()), **json.loads((chain / "run.json").read_text()),
           "model_config": str(folder / "log/model_config.json")}
    ranks = Ranks("cpu")
    model, ans2label, _ = build(cfg, "cpu", ranks)
    load_checkpoint(model, next((folder / "ckpt").glob("model_step_*.pt")))
    return model, list(ans2label), loader(cfg, chain / "txt/data_val.jsonl", chain / "img", 8, False, None, ranks)


def test_counting_flops_for_the_peak_row_leaves_the_answers_alone(released):
    """The cuda path's extra, untimed forward (run here on the cpu): FLOPs an item counted, and
    the same answers as without it."""
    from zoorepro.clipbert.run_video_qa import predict

    model, labels, data = released
    plain, counted = ({"data_s": 0.0, "model_s": 0.0, "items": 0} for _ in range(2))
    answers = predict(model, data, 16, "mean", "cpu", labels, plain)
    assert predict(model, data, 16, "mean", "cpu", labels, counted, count_flops=True) == answers
    assert "flops_per_item" not in plain and counted["flops_per_item"] > 1e6


def test_bench_ratio_times_the_step_loop_and_a_bare_loop_on_the_same_batches(released):
    """`make bench`'s inference figure (run_video_qa.bench_ratio): both loops over the same batches;
    the figure itself is a benchmark's, not a test's."""
    from zoorepro.clipbert.run_video_qa import bench_ratio

    model, labels, data = released
    ratio = bench_ratio(model, list(data), 16, "mean", "cpu", labels, repeats=1)
    assert ratio["batches"] == 2 and ratio["bare_s"] > 0 and ratio["ours_s"] > 0 and ratio["ratio"] > 0
