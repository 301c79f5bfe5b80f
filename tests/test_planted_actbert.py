"""The mini ActBERT chain can tell right from wrong: the planted R@1/R@5/R@10/MedianR/MeanR
(zoorepro/actbert/plant.py) are REPRODUCED by the correct chain, and each injected fault ends
OUT_OF_TOLERANCE in the table with `python -m zoorepro audit` exiting non-zero and naming the
planted claim.

The chain (generator, sources, test step) is a copy of the suite's one build of the mini DAG
(conftest.mini_dag). Each fault then runs the affected step with a faulty input into its own
folder, the downstream steps by their CLI, `python -m zoorepro table ... --planted` into `<fault>/results/mini/` and the audit on
that folder. The planting's own numpy (choice of captions, margins, expected metrics) is tested
without PaddleVideo below the chain tests.
"""
from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import lmdb
import numpy as np
import pytest
import yaml
from conftest import built_copy, run

from zoorepro.actbert.metrics import agree, ranks_from_scores, retrieval_metrics
from zoorepro.actbert.msrvtt import CAPTIONS_FILE, FEATURES_DIR, read_captions
from zoorepro.actbert.plant import (
    check_asymmetric,
    check_non_degenerate,
    choose_pairing,
    expected_metrics,
    ranks_and_margins,
)
from zoorepro.actbert.test import measurement_records
from zoorepro.claims import load_planted
from zoorepro import lineage
from zoorepro.errors import ZooreproError
from zoorepro.measurements import write_measurements
from zoorepro.report import read_table

MINI = "data/mini/actbert"
WORK = "work/mini/actbert/cpu"
PLANTED = f"{MINI}/planted_claims.yaml"
METRICS = ("R@1", "R@5", "R@10", "MedianR", "MeanR")
PY = sys.executable


@pytest.fixture(scope="module")
def repo(tmp_path_factory, mini_dag) -> Path:
    """A copy of the suite's mini DAG build (conftest.mini_dag): the mini data, the planted claims
    and the cpu test step's outputs."""
    repo = built_copy(mini_dag, tmp_path_factory.mktemp("planted_actbert") / "repo")
    assert (repo / PLANTED).is_file() and (repo / WORK / "test.measurements.json").is_file()
    return repo


def planted(repo: Path) -> dict[str, float]:
    return {c.metric: c.value for c in load_planted(repo / PLANTED)}


def judge(repo: Path, name: str, measurements: Path, toolchain: Path) -> tuple[dict, subprocess.CompletedProcess]:
    """`zoorepro table --planted` for the measurements into faults/<name>/results/mini/, then the
    audit on that folder. Returns the planted rows by metric and the audit's process."""
    results = repo / "faults" / name / "results"
    run([PY, "-m", "zoorepro", "table", "--model", "actbert", "--target", "cpu", "--scale", "mini",
         "--measurements", str(measurements), "--toolchain", str(toolchain), "--planted", PLANTED,
         "--out", str(results / "mini/actbert_cpu.csv")], cwd=repo)
    rows = {r["metric"]: r for r in read_table(results / "mini/actbert_cpu.csv")
            if r["claim_id"].startswith("actbert.mini.")}
    audit = run([PY, "-m", "zoorepro", "audit", "--results", str(results), "--out", ""], cwd=repo, check=False)
    return rows, audit


def assert_detected(rows: dict, audit: subprocess.CompletedProcess, expected: dict[str, float]) -> None:
    """At least one planted metric OUT_OF_TOLERANCE, exactly the metrics that moved off their planted
    value judged OUT_OF_TOLERANCE (a planted value is an exact expectation: moving the 'better' way
    is as wrong, never BETTER), and the audit failing and naming them."""
    out = [m for m, r in rows.items() if r["verdict"] == "OUT_OF_TOLERANCE"]
    assert out, {m: (r["reproduced"], r["reported"], r["verdict"]) for m, r in rows.items()}
    for metric, row in rows.items():
        moved = abs(float(row["reproduced"]) - expected[metric]) >= 1e-4
        assert row["verdict"] == ("OUT_OF_TOLERANCE" if moved else "REPRODUCED"), (metric, row["reproduced"],
                                                                                    row["verdict"])
    assert audit.returncode != 0, audit.stdout[-2000:]
    for metric in out:
        assert rows[metric]["claim_id"] in audit.stderr


def run_test_step(repo: Path, name: str, captions: Path | None = None, features: Path | None = None) -> Path:
    """zoorepro.actbert.test (the rule's command) on another caption csv or feature lmdb, into
    faults/<name>/."""
    fault = repo / "faults" / name
    run([PY, "-m", "zoorepro.actbert.test", "-c", "zoorepro/actbert/configs/mini_msrvtt.yaml",
         "-w", f"{MINI}/ActBERT-mini.pdparams", "--file-path", str(captions or repo / MINI / CAPTIONS_FILE),
         "--features-path", str(features or repo / MINI / FEATURES_DIR), "--vocab-dir", f"{MINI}/bert-vocab",
         "--src", "work/src/actbert", "--device", "cpu", "--work-dir", str(fault / "test"),
         "--out", str(fault / "metrics.json"), "--measurements", str(fault / "test.measurements.json")], cwd=repo)
    return fault


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{vid},{caption}\n" for vid, caption in rows))
    return path


# ---- the correct chain ---------------------------------------------------------------------------

def test_planted_values_are_non_degenerate(repo):
    values, n = planted(repo), len(read_captions(repo / MINI / CAPTIONS_FILE))
    assert set(values) == set(METRICS)
    assert 100 / n < values["R@1"] < values["R@5"] < values["R@10"] < 100  # above chance, below certainty
    assert 1 < values["MedianR"] < n and 1 < values["MeanR"] < (n + 1) / 2  # better than random ranking
    # one caption more or less at any rank moves a percentage (100/n) or a mean rank (1/n) far
    # beyond the planted tolerance
    tolerance = yaml.safe_load((repo / "params.yaml").read_text())["tolerances"]["planted_points"]
    assert 1 / n > tolerance


def test_the_correct_chain_reproduces_every_planted_metric(repo):
    rows, audit = judge(repo, "none", repo / WORK / "test.measurements.json", repo / WORK / "metrics.json")
    assert {m: r["verdict"] for m, r in rows.items()} == {m: "REPRODUCED" for m in METRICS}
    assert audit.returncode == 0, audit.stderr


def test_margins_protect_the_planted_ranks_from_float_noise(repo):
    """Any perturbation of the scores below half the generator's margin (a device's float noise is
    ~1e-7 there) leaves the pipeline's metrics on the planted values."""
    scores = np.load(repo / WORK / "test/score_matrix.npy")
    targets = np.load(repo / WORK / "test/target_matrix.npy")
    margin = json.loads((repo / MINI / "MANIFEST.json").read_text())["params"]["min_margin"]
    noise = np.random.default_rng(0).uniform(-0.49 * margin, 0.49 * margin, scores.shape)
    assert retrieval_metrics(ranks_from_scores(scores + noise, targets)) == pytest.approx(planted(repo), abs=1e-9)


def test_reordering_the_csv_rows_keeps_the_pairing_and_the_planted_values(repo):
    """Control: the same caption-video pairs in another row order are the same retrieval problem."""
    rows = list(read_captions(repo / MINI / CAPTIONS_FILE))
    order = np.random.default_rng(1).permutation(len(rows))
    csv = write_csv(repo / "faults/reordered" / CAPTIONS_FILE, [rows[i] for i in order])
    fault = run_test_step(repo, "reordered", csv)
    table, audit = judge(repo, "reordered", fault / "test.measurements.json", fault / "metrics.json")
    assert {m: r["verdict"] for m, r in table.items()} == {m: "REPRODUCED" for m in METRICS}
    assert audit.returncode == 0, audit.stderr


# ---- injected faults -----------------------------------------------------------------------------

def remeasure(repo: Path, name: str, scores: np.ndarray, targets: np.ndarray) -> Path:
    """The test step's measurements as its own code (metrics.py, test.measurement_records) makes
    them from another score/target matrix, saved as that fault's raw output."""
    fault = repo / "faults" / name
    (fault / "test").mkdir(parents=True)
    np.save(fault / "test/score_matrix.npy", scores)
    np.save(fault / "test/target_matrix.npy", targets)
    result = json.loads((repo / WORK / "metrics.json").read_text())
    result["recomputed"] = retrieval_metrics(ranks_from_scores(scores, targets))
    raw = (fault / "test").relative_to(repo)
    with contextlib.chdir(repo):  # paths as the rules give them, relative to the repo
        lineage.record(raw, [f"{MINI}/ActBERT-mini.pdparams"])  # what the test step records for its folder
        write_measurements(fault / "test.measurements.json", measurement_records(result, str(raw)))
    return fault


def test_fault_score_matrix_transposed_before_ranking(repo):
    scores = np.load(repo / WORK / "test/score_matrix.npy")
    targets = np.load(repo / WORK / "test/target_matrix.npy")
    fault = remeasure(repo, "transposed", scores.T, targets.T)
    # the test step's own cross-check (PaddleVideo's log line vs the recomputation) refuses it too
    logged = json.loads((repo / WORK / "metrics.json").read_text())["logged"]
    with pytest.raises(ZooreproError, match="disagree"):
        agree(logged, retrieval_metrics(ranks_from_scores(scores.T, targets.T)))
    rows, audit = judge(repo, "transposed", fault / "test.measurements.json", repo / WORK / "metrics.json")
    assert_detected(rows, audit, planted(repo))


def test_fault_scores_ranked_ascending(repo):
    """A sign slip in the ranking (argsort(score) instead of argsort(-score))."""
    scores = np.load(repo / WORK / "test/score_matrix.npy")
    fault = remeasure(repo, "ascending", -scores, np.load(repo / WORK / "test/target_matrix.npy"))
    rows, audit = judge(repo, "ascending", fault / "test.measurements.json", repo / WORK / "metrics.json")
    assert_detected(rows, audit, planted(repo))


def test_fault_captions_shifted_by_one_row(repo):
    """Every caption one row down (the last to the top): PaddleVideo's log and the recomputation
    agree with each other, only the planted claims know the pairing is wrong."""
    rows = list(read_captions(repo / MINI / CAPTIONS_FILE))
    shifted = [(vid, rows[i - 1][1]) for i, (vid, _) in enumerate(rows)]
    fault = run_test_step(repo, "shifted", write_csv(repo / "faults/shifted" / CAPTIONS_FILE, shifted))
    table, audit = judge(repo, "shifted", fault / "test.measurements.json", fault / "metrics.json")
    assert_detected(table, audit, planted(repo))


def test_fault_two_feature_records_swapped_in_the_lmdb(repo):
    """A misordered feature file: the records of two videos under each other's keys. Only the two
    captions of those videos can move, so the two are the first videos planted at rank 1 (their
    captions rank them first by the generator's margin, and the other video cannot take that place
    for free)."""
    ranks = json.loads((repo / MINI / "MANIFEST.json").read_text())["planted"]["ranks"]
    first, second = (read_captions(repo / MINI / CAPTIONS_FILE).entries[i][0]
                     for i in [i for i, rank in enumerate(ranks) if rank == 0][:2])
    features = shutil.copytree(repo / MINI / FEATURES_DIR, repo / "faults/swapped" / FEATURES_DIR)
    env = lmdb.open(str(features), lock=False, map_size=1 << 28)
    with env.begin(write=True) as txn:
        a, b = txn.get(first.encode()), txn.get(second.encode())
        txn.put(first.encode(), b)
        txn.put(second.encode(), a)
    env.close()
    fault = run_test_step(repo, "swapped", features=features)
    rows, audit = judge(repo, "swapped", fault / "test.measurements.json", fault / "metrics.json")
    assert_detected(rows, audit, planted(repo))


# ---- the planting's numpy, without PaddleVideo -----------------------------------------------------

def random_scores(n_captions: int, n_videos: int, seed: int = 0) -> np.ndarray:
    """Scores with a caption-video interaction, as the shaped model gives."""
    rng = np.random.default_rng(seed)
    return 1 / (1 + np.exp(-(rng.normal(size=(n_captions, n_videos)) + 0.3 * rng.normal(size=n_videos))))


def test_expected_metrics_agree_with_the_pipelines_metric_code():
    """Two implementations (plant.py: count of higher scores; metrics.py: upstream's argsort)."""
    for seed in range(5):
        scores = random_scores(30, 30, seed)
        assert expected_metrics(scores) == pytest.approx(retrieval_metrics(ranks_from_scores(scores, np.eye(30))))


def test_choose_pairing_plants_distinct_captions_at_safe_ranks():
    scores = random_scores(200, 24)
    pairing = choose_pairing(scores, 0.4, 1e-3)
    assert len(set(pairing.caption_of_video)) == 24
    assert int(np.sum(pairing.ranks == 0)) == round(0.4 * 24) and pairing.margins.min() >= 1e-3
    chosen = scores[pairing.caption_of_video]
    ranks, margins = ranks_and_margins(chosen)
    np.testing.assert_array_equal(np.diag(ranks), pairing.ranks)
    metrics = expected_metrics(chosen)
    check_non_degenerate(metrics, 24)
    assert metrics["R@1"] == pytest.approx(100 * 10 / 24) and metrics["MedianR"] > 1
    assert check_asymmetric(chosen) != metrics


def test_choose_pairing_refuses_too_few_candidates_or_too_wide_a_margin():
    with pytest.raises(ZooreproError, match="generate more candidates"):
        choose_pairing(random_scores(12, 24), 0.4, 1e-3)
    with pytest.raises(ZooreproError, match="generate more candidates"):
        choose_pairing(random_scores(200, 24), 0.4, 0.5)


def test_degenerate_or_symmetric_plantings_are_refused():
    with pytest.raises(ZooreproError, match="MedianR"):
        check_non_degenerate({"R@1": 60.0, "R@5": 80.0, "R@10": 90.0, "MedianR": 1.0, "MeanR": 2.0}, 24)
    with pytest.raises(ZooreproError, match="chance"):
        check_non_degenerate({"R@1": 100 / 24, "R@5": 80.0, "R@10": 90.0, "MedianR": 3.0, "MeanR": 4.0}, 24)
    symmetric = random_scores(24, 24)
    symmetric = (symmetric + symmetric.T) / 2
    with pytest.raises(ZooreproError, match="symmetric"):
        check_asymmetric(symmetric)
