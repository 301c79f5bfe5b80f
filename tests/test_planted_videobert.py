"""VideoBERT's mini chain tells right from wrong: the planted Top-1 (zoorepro/videobert/make_mini.py)
is REPRODUCED by the correct chain on cpu (and on the stand-in mrv100, IxRT + ByteMLPerf: checked
in tests/test_e2e_standins.py, which builds that table), and each injected fault ends
OUT_OF_TOLERANCE in the table with the audit exiting non-zero and naming the planted claim.

The chain is a copy of the suite's one build of the mini DAG (conftest.mini_dag). The fault runs
use the workload with its benchmark shrunk (its first batch size only, iterations 1): Top-1
depends only on the first batch size and data_percent, which are kept. A fault is injected by
running perf_engine (the step that reads, preprocesses, infers and scores) with a faulty
input or a faulty pipeline function into a temporary folder, then the table (`--planted`) into
`<tmp>/results/mini/` and the audit on that folder.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import built_copy, run

from zoorepro.report import read_table

PLANTED_ID = "videobert.mini.top1"
DATA = "data/mini/videobert"
CIFAR = f"{DATA}/cifar-100-python"
PLANTED = f"{DATA}/planted_claims.yaml"
WORKLOAD = "workloads/videobert-onnx-fp32.json"
SHRUNK = "videobert-onnx-fp32.shrunk.json"  # the workload with its first batch size only, iterations 1
N_CLASSES = 100

# Faulty pipeline functions, patched into zoorepro.videobert.cifar before perf_engine runs.
BGR = """
import numpy as np
from PIL import Image
import zoorepro.videobert.cifar as cifar
rgb = cifar._to_rgb
cifar._to_rgb = lambda image: Image.fromarray(np.ascontiguousarray(np.asarray(rgb(image))[..., ::-1]))
"""
LABELS_SHIFTED = """
import zoorepro.videobert.cifar as cifar
read = cifar.read_test_split
def shifted(folder):
    images, labels = read(folder)
    return images, labels[1:] + labels[:1]
cifar.read_test_split = shifted
"""
RUN_PERF_ENGINE = """
import runpy, sys
sys.argv = ["perf_engine", *{argv!r}]
runpy.run_module("zoorepro.videobert.perf_engine", run_name="__main__")
"""


@pytest.fixture(scope="module")
def chain(tmp_path_factory, mini_dag) -> Path:
    """A copy of the suite's mini DAG build (conftest.mini_dag), with the mini VideoBERT cpu table
    built by Snakemake, and beside it SHRUNK, the workload the fault runs use (benchmark shrunk)."""
    repo = built_copy(mini_dag, tmp_path_factory.mktemp("planted") / "repo")
    assert (repo / "results/mini/videobert_cpu.csv").is_file()
    workload = json.loads((repo / WORKLOAD).read_text())
    (repo / SHRUNK).write_text(json.dumps({**workload, "batch_sizes": workload["batch_sizes"][:1], "iterations": 1}))
    return repo


def planted_claim(repo: Path) -> dict:
    claims = yaml.safe_load((repo / PLANTED).read_text())["claims"]
    assert [c["id"] for c in claims] == [PLANTED_ID]
    return claims[0]


def planted_row(table: Path) -> dict:
    rows = [r for r in read_table(table) if r["claim_id"] == PLANTED_ID]
    assert len(rows) == 1, rows
    return rows[0]


def audit(results: Path, cwd: Path):
    return run(["python", "-m", "zoorepro", "audit", "--results", str(results), "--out", ""], cwd=cwd, check=False)


def run_faulty_chain(repo: Path, out: Path, *, prelude: str = "", data: str = CIFAR) -> tuple[dict, object]:
    """perf_engine (with `prelude` patched in, on `data`), table --planted, audit: all under `out`.
    Returns the table's planted row and the audit's process."""
    work = out / "work"
    argv = ["--target", "cpu", "--onnx", "work/mini/videobert/onnx/video-bert.onnx", "--data", str(data),
            "--workload", SHRUNK, "--out-dir", str(work / "report"), "--logits", str(work / "open_cifar.npy"),
            "--measurements", str(work / "m.json"), "--toolchain", str(work / "t.json")]
    run([sys.executable, "-c", prelude + RUN_PERF_ENGINE.format(argv=argv)], cwd=repo)
    table = out / "results" / "mini" / "videobert_cpu.csv"
    run(["python", "-m", "zoorepro", "table", "--model", "videobert", "--target", "cpu", "--scale", "mini",
         "--measurements", str(work / "m.json"), "--toolchain", str(work / "t.json"),
         "--planted", PLANTED, "--out", str(table)], cwd=repo)
    return planted_row(table), audit(out / "results", repo)


def assert_detected(repo: Path, row: dict, proc) -> None:
    assert row["verdict"] == "OUT_OF_TOLERANCE", row
    assert float(row["reproduced"]) != pytest.approx(planted_claim(repo)["value"], abs=0.01)
    assert proc.returncode != 0 and PLANTED_ID in proc.stdout + proc.stderr, proc.stdout[-3000:]


# ---- the planted value --------------------------------------------------------------------------

def test_planted_top1_is_non_degenerate(chain):
    """Not 0, not 100, not chance (1 %), and one image moves it by more than the mini tolerance."""
    claim = planted_claim(chain)
    params = yaml.safe_load((chain / "params.yaml").read_text())
    n_images = params["videobert"]["mini"]["n_images"]
    assert claim["metric"] == "top1" and claim["unit"] == "percent" and claim["scale"] == "mini"
    value = claim["value"]
    assert 10 < value < 90 and abs(value - 100 / N_CLASSES) > 5
    right = value * n_images / 100
    assert right == pytest.approx(round(right), abs=1e-9)  # a whole number of planted-right images
    assert 100 / n_images > params["tolerances"]["planted_points"]


# ---- the correct chain ---------------------------------------------------------------------------

def test_the_correct_cpu_chain_reproduces_the_planted_top1(chain):
    row = planted_row(chain / "results/mini/videobert_cpu.csv")
    assert row["verdict"] == "REPRODUCED" and row["batch_size"] == "4", row
    proc = audit(chain / "results", chain)
    assert proc.returncode == 0, proc.stdout[-3000:]


# The stand-in mrv100 chain (IxRT + ByteMLPerf) reproducing the planted Top-1 is checked where that
# table is built: tests/test_e2e_standins.py::test_standin_iluvatar_tools_produce_the_mrv100_table_end_to_end.


# ---- injected faults -------------------------------------------------------------------------------

def test_fault_bgr_channel_order_in_preprocessing_is_detected(chain, tmp_path):
    """The pipeline's CLIP transform gets the image in BGR order (as from cv2) instead of RGB."""
    row, proc = run_faulty_chain(chain, tmp_path, prelude=BGR)
    assert_detected(chain, row, proc)


def test_fault_labels_shifted_by_one_image_is_detected(chain, tmp_path):
    """The loader pairs each image with the next image's label."""
    row, proc = run_faulty_chain(chain, tmp_path, prelude=LABELS_SHIFTED)
    assert_detected(chain, row, proc)


def test_fault_class_prompts_in_reverse_order_is_detected(chain, tmp_path):
    """text.npy's 100 prompts in another order than the labels' classes (a faulty input)."""
    data = tmp_path / "cifar-100-python"
    data.mkdir()
    for name in ("test", "meta"):
        (data / name).symlink_to(chain / CIFAR / name)
    np.save(data / "text.npy", np.load(chain / CIFAR / "text.npy")[::-1])
    row, proc = run_faulty_chain(chain, tmp_path / "run", data=str(data))
    assert_detected(chain, row, proc)
