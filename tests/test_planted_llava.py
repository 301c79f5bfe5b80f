"""The mini LLaVA-NeXT-Video chain can tell right from wrong, on cpu and on the stand-in NPU.

The suite's one cold build of the mini DAG (conftest `mini_dag`: `dvc repro`) built the cpu table
(all five checkpoints: generator, extract_dataset, llava_gpu, score, table); a copy of it builds the
npu table through the stand-in MindIE-LLM (tests/standins/mindie:
run_pa_videobench.sh's command line and output format, transformers on CPU underneath), with the
precision test against the cpu answers. Every planted claim must be REPRODUCED, the NPU-vs-GPU
rows present with verdicts, and the audit clean. Each injected fault (the prompt without the
document's suffix; the frames in reverse order) reruns llava_gpu for one checkpoint by its CLI,
then the score and table steps, and must end OUT_OF_TOLERANCE with the audit naming the claim.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from conftest import built_copy, run

from zoorepro.claims import load_planted
from zoorepro.report import read_table

MODEL = "llava_video"
MINI = f"data/mini/{MODEL}"
PLANTED = f"{MINI}/planted_claims.yaml"
SAMPLE = f"work/mini/{MODEL}/sample"
PY = sys.executable


def mindie_env(repo: Path) -> dict[str, str]:
    """The stand-in MindIE-LLM checkout, its fake torch_npu/atb_llm importable."""
    mindie = repo / "tests/standins/mindie"
    return {"MINDIE_LLM_HOME": str(mindie), "ZOOREPRO_STANDIN_PYTHON": PY,
            "PYTHONPATH": os.pathsep.join([str(repo), str(mindie / "python")])}


@pytest.fixture(scope="module")
def repo(mini_dag, tmp_path_factory) -> Path:
    repo = built_copy(mini_dag, tmp_path_factory.mktemp("planted_llava") / "repo")
    run(["snakemake", "-j2", f"results/mini/{MODEL}_cpu.csv"], cwd=repo)  # built by mini_dag: nothing to do
    run(["snakemake", "-j2", f"results/mini/{MODEL}_npu.csv"], cwd=repo, env_extra=mindie_env(repo))
    return repo


def rows_by_claim(table: Path) -> dict[str, dict]:
    return {r["claim_id"]: r for r in read_table(table) if r["claim_id"]}


@pytest.mark.parametrize("target", ["cpu", "npu"])
def test_planted_claims_reproduced(repo, target):
    rows = rows_by_claim(repo / f"results/mini/{MODEL}_{target}.csv")
    planted = [c for c in load_planted(repo / PLANTED) if c.target in ("any", target)]
    assert planted, "no planted claims for this target"
    for claim in planted:
        assert rows[claim.id]["verdict"] == "REPRODUCED", rows[claim.id]
    accuracy = [c.value for c in planted if c.metric.endswith(" accuracy")]
    assert accuracy and all(0 < v < 100 for v in accuracy)


def test_npu_table_has_precision_test_rows(repo):
    table = read_table(repo / f"results/mini/{MODEL}_npu.csv")
    metrics = {r["metric"]: r for r in table}
    for ckpt in ("7B", "7B-32K", "7B-DPO", "34B", "34B-DPO"):
        for name in ("GPU accuracy (document reading)", "NPU accuracy (document reading)",
                     "|NPU-GPU| accuracy gap (document reading)", "|NPU-GPU| accuracy gap", "NPU-GPU same answer"):
            assert f"{ckpt} {name}" in metrics, f"{ckpt} {name}"
        gap = [r for r in table if r["metric"] == f"{ckpt} |NPU-GPU| accuracy gap"]
        # the document's implicit claim (NOT_COMPARABLE at mini, stand-in) and the planted value
        assert {r["verdict"] for r in gap} == {"NOT_COMPARABLE", "REPRODUCED"}
        assert all("stand-in" in r["note"] for r in gap if r["verdict"] == "NOT_COMPARABLE")
    audit = run([PY, "-m", "zoorepro", "audit", "--results", str(repo / "results"), "--out", ""], cwd=repo,
                check=False)
    assert audit.returncode == 0, audit.stdout[-3000:] + audit.stderr[-3000:]


FAULTS = {"no suffix": ["--prompt-suffix", "none"], "reversed frames": ["--frame-order", "reversed"]}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_injected_fault_is_detected(repo, tmp_path, fault):
    """The fault's 7B answers differ from what the planted ANSWER.json expects."""
    ckpt, work = "7B", repo / f"work/mini/{MODEL}/cpu"
    out = tmp_path / "Chat_results"
    run([PY, "-m", "zoorepro.llava_video.llava_gpu", "--model_path", f"{MINI}/models/LLaVA-NeXT-Video-7B-hf",
         "--dataset_name", "sampling_data", "--Eval_QA_root", f"{SAMPLE}/Video-Bench",
         "--Eval_Video_root", f"{SAMPLE}/VideoBench", "--chat_conversation_output_folder", str(out),
         "--ckpt", ckpt, "--dtype", "float32", "--device", "cpu", "--max_new_tokens", "3",
         "--measurements", str(tmp_path / "perf.measurements.json"), *FAULTS[fault]], cwd=repo)
    run([PY, "-m", "zoorepro.llava_video.videobench_score", "--eval", str(out / "sampling_data_eval.json"),
         "--sampling_answer_path", f"{SAMPLE}/Video-Bench/Eval_QA/sampling_answer.json", "--ckpt", ckpt,
         "--precision", "float32", "--out", str(tmp_path / "score.measurements.json")], cwd=repo)
    measurements = [str(tmp_path / "perf.measurements.json"), str(tmp_path / "score.measurements.json")]
    for other in ("7B-32K", "7B-DPO", "34B", "34B-DPO"):
        measurements += [str(work / other / "transformers" / f) for f in ("perf.measurements.json", "score.measurements.json")]
    results = tmp_path / "results"
    run([PY, "-m", "zoorepro", "table", "--model", MODEL, "--target", "cpu", "--scale", "mini", "--measurements", *measurements,
         "--toolchain", str(work / "7B/transformers/toolchain.json"), "--planted", PLANTED,
         "--out", str(results / "mini" / f"{MODEL}_cpu.csv")], cwd=repo)
    rows = rows_by_claim(results / "mini" / f"{MODEL}_cpu.csv")
    claim = f"{MODEL}.mini.cpu_7b_accuracy"
    assert rows[claim]["verdict"] == "OUT_OF_TOLERANCE", rows[claim]
    assert float(rows[claim]["reproduced"]) != float(rows[claim]["reported"])
    assert rows[f"{MODEL}.mini.cpu_7b_32k_accuracy"]["verdict"] == "REPRODUCED"
    audit = run([PY, "-m", "zoorepro", "audit", "--results", str(results), "--out", ""], cwd=repo, check=False)
    assert audit.returncode != 0 and claim in audit.stdout + audit.stderr
