"""The mini ViLBERT chain tells right from wrong: planted outcomes and injected faults.

The mini generator plants each question's human answers from the eager model's logits and records
the expected precision/recall/fscore/vqa_score (allennlp's own metric classes) in
data/mini/vilbert/planted_claims.yaml. The module fixture copies the suite's one build of the mini
DAG (conftest.mini_dag), whose cpu chain includes the postprocess step's measurements; each fault
test then re-runs the affected step(s) with a faulty input into a temporary folder, re-runs the
downstream steps by their CLI, writes the table with the planted claims and runs the audit on that
folder.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml
from conftest import built_copy, run, standin_env

from zoorepro import lineage
from zoorepro.report import read_table

MINI = "work/mini/vilbert"
PREPROCESSED = f"{MINI}/preprocessed"
PLANTED = "data/mini/vilbert/planted_claims.yaml"
ARCHIVE = "data/mini/vilbert/vilbert-vqa-mini.tar.gz"
INPUTS = ("box_features", "box_coordinates", "box_mask", "token_ids", "mask", "type_ids")
METRICS = ("precision", "recall", "fscore", "vqa_score")


@pytest.fixture(scope="module")
def repo(tmp_path_factory, mini_dag) -> Path:
    """A copy of the suite's mini DAG build (conftest.mini_dag), whose cpu chain includes the
    accuracy measurements (bs1 model)."""
    repo = built_copy(mini_dag, tmp_path_factory.mktemp("planted") / "repo")
    assert (repo / MINI / "cpu/accuracy.measurements.json").is_file()
    return repo


def planted(repo: Path) -> dict[str, float]:
    claims = yaml.safe_load((repo / PLANTED).read_text())["claims"]
    return {c["metric"]: c["value"] for c in claims}


def tolerance(repo: Path) -> float:
    """params.yaml tolerances.planted_points, in points of a fraction (1 point = 0.01)."""
    return yaml.safe_load((repo / "params.yaml").read_text())["tolerances"]["planted_points"] / 100


def step(repo: Path, module: str, *args: object, check: bool = True):
    return run([sys.executable, "-m", module, *map(str, args)], cwd=repo, check=check)


def infer(repo: Path, model: Path, inputs: list[Path], out: Path, check: bool = True):
    return step(repo, "zoorepro.steps.infer", "--target", "cpu", "--model", model, "--batch-size", 1,
                "--inputs", *inputs, "--out-dir", out, check=check)


def postprocess(repo: Path, outputs: Path, data: Path, case: Path) -> Path:
    """The postprocess step into `case`; returns its measurements file."""
    measurements = case / "accuracy.measurements.json"
    step(repo, "zoorepro.vilbert.postprocess", "--archive_file", ARCHIVE, "--result_dir", outputs,
         "--label_dir", data / "labels", "--label_weight_dir", data / "label_weights", "--precision", "fp32",
         "--out", case / "metrics.json", "--measurements", measurements)
    return measurements


def judged(repo: Path, measurements: Path, case: Path) -> tuple[dict[str, dict], object]:
    """The table with the planted claims in `case`/results/mini/, and the audit of that folder."""
    results = case / "results" / "mini"
    results.mkdir(parents=True, exist_ok=True)
    step(repo, "zoorepro", "table", "--model", "vilbert", "--target", "cpu", "--scale", "mini",
         "--measurements", measurements, "--planted", PLANTED, "--out", results / "vilbert_cpu.csv")
    rows = {r["metric"]: r for r in read_table(results / "vilbert_cpu.csv") if r["kind"] == "accuracy"}
    audit = step(repo, "zoorepro", "audit", "--results", case / "results", "--out", "", check=False)
    return rows, audit


def assert_detected(repo: Path, case: Path, measurements: Path) -> dict[str, float]:
    """At least one planted metric off by more than the tolerance in the postprocess step's own
    metrics.json, OUT_OF_TOLERANCE in the table, and the audit exits non-zero naming its claim id."""
    import json

    computed = json.loads((case / "metrics.json").read_text())
    expected = planted(repo)
    assert any(abs(computed[m] - expected[m]) > tolerance(repo) for m in METRICS), (computed, expected)
    rows, audit = judged(repo, measurements, case)
    out = {m: rows[m]["verdict"] for m in METRICS}
    bad = [m for m in METRICS if out[m] == "OUT_OF_TOLERANCE"]
    assert bad, f"fault not detected: {out}"
    assert audit.returncode != 0, audit.stdout
    assert any(rows[m]["claim_id"] in audit.stdout + audit.stderr for m in bad), audit.stdout
    return {m: float(rows[m]["reproduced"]) for m in METRICS}


def copy_data(repo: Path, case: Path) -> Path:
    data = case / "preprocessed"
    shutil.copytree(repo / PREPROCESSED, data)
    return data


def input_dirs(data: Path, order=INPUTS) -> list[Path]:
    return [data / name for name in order]


# ---- the planted values and the correct chain ---------------------------------------------------

def test_planted_values_are_not_degenerate(repo):
    """Not 0, not 1, not what a random model gives; precision and recall differ (a swap of the two
    is visible); every metric moves by more than the tolerance when one question changes."""
    values = planted(repo)
    assert set(values) == set(METRICS)
    assert all(0.3 < v < 0.9 for v in values.values()), values
    assert abs(values["precision"] - values["recall"]) > 100 * tolerance(repo)
    n = len(list((repo / PREPROCESSED / "labels").iterdir()))
    assert 1 / (3 * n) > 10 * tolerance(repo)  # one question's smallest VQA step (1/3 vote) vs tolerance
    claims = yaml.safe_load((repo / PLANTED).read_text())
    assert all(c["scale"] == "mini" and c["unit"] == "fraction" for c in claims["claims"])


def test_the_correct_chain_reproduces_every_planted_metric(repo, tmp_path):
    rows, audit = judged(repo, repo / MINI / "cpu/accuracy.measurements.json", tmp_path)
    assert {m: rows[m]["verdict"] for m in METRICS} == {m: "REPRODUCED" for m in METRICS}
    values = planted(repo)
    for m in METRICS:
        assert float(rows[m]["reproduced"]) == pytest.approx(values[m], abs=tolerance(repo))
    assert audit.returncode == 0, audit.stdout


# ---- injected faults ----------------------------------------------------------------------------

def swapped_inputs(repo: Path, case: Path, clamp_to: int | None = None) -> list[Path]:
    """The input folders with token_ids and type_ids swapped; with `clamp_to`, the ids fed as
    type_ids are clipped to [0, clamp_to - 1], as a runtime that does not bounds-check its Gather
    would read them (onnxruntime refuses them instead)."""
    data = repo / PREPROCESSED
    if clamp_to is None:
        return input_dirs(data, ("box_features", "box_coordinates", "box_mask", "type_ids", "mask", "token_ids"))
    clamped = case / "token_ids_as_type_ids"
    clamped.mkdir(parents=True)
    for path in sorted((data / "token_ids").iterdir()):
        np.save(clamped / path.name, np.clip(np.load(path), 0, clamp_to - 1))
    return [*input_dirs(data, ("box_features", "box_coordinates", "box_mask", "type_ids", "mask")), clamped]


def test_fault_token_ids_and_type_ids_swapped_at_inference(repo, tmp_path):
    """onnxruntime refuses the swap outright (token ids index the 2-row type embedding out of its
    bounds): detected before any table. Where the runtime reads such indices without a check
    (emulated by clamping them into the table), the planted claims catch the swap."""
    model = repo / MINI / "cpu/model_bs1.onnx"
    proc = infer(repo, model, swapped_inputs(repo, tmp_path), tmp_path / "refused", check=False)
    assert proc.returncode != 0 and "out of" in (proc.stdout + proc.stderr).lower(), proc.stdout + proc.stderr
    infer(repo, model, swapped_inputs(repo, tmp_path, clamp_to=2), tmp_path / "outputs")
    assert_detected(repo, tmp_path, postprocess(repo, tmp_path / "outputs", repo / PREPROCESSED, tmp_path))


def test_fault_outputs_read_in_lexical_order(repo, tmp_path):
    """ais_bench writes {i}_0.npy; a reader that sorts names lexically takes 10_0 before 1_0:
    the k-th file in lexical order is read as sample k."""
    source = repo / MINI / "cpu/outputs"
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    for k in (0, 1):
        files = sorted(source.glob(f"*_{k}.npy"), key=lambda p: p.name)
        for i, path in enumerate(files):
            shutil.copy(path, outputs / f"{i}_{k}.npy")
    assert (outputs / "1_0.npy").read_bytes() == (source / "10_0.npy").read_bytes()  # "10_0" < "1_0"
    lineage.record(outputs, [repo / MINI / "cpu/model_bs1.onnx"])  # as the faulty step would record it
    assert_detected(repo, tmp_path, postprocess(repo, outputs, repo / PREPROCESSED, tmp_path))


def test_fault_labels_in_another_order_than_the_samples(repo, tmp_path):
    """The label folders' files shifted by one sample (labels and weights together)."""
    data = copy_data(repo, tmp_path)
    n = len(list((data / "labels").iterdir()))
    for name in ("labels", "label_weights"):
        arrays = [np.load(repo / PREPROCESSED / name / f"{i}.npy") for i in range(n)]
        for i in range(n):
            np.save(data / name / f"{i}.npy", arrays[(i + 1) % n])
    lineage.record(data, [repo / "data/mini/vilbert"])  # as the faulty preprocess would record it
    assert_detected(repo, tmp_path, postprocess(repo, repo / MINI / "cpu/outputs", data, tmp_path))


def fixed_without(repo: Path, skipped: str, out: Path) -> Path:
    """The simplified bs1 ONNX with the document's fixes except `skipped` (fix_mul or fix_gather)."""
    sys.path.insert(0, str(repo))
    from zoorepro.vilbert import fix_onnx

    model = onnx.load(repo / MINI / "onnx/vqa-vilbert_bs1_sim.onnx")
    counts = {name: getattr(fix_onnx, name)(model) for name in ("fix_mul", "fix_gather") if name != skipped}
    assert all(counts.values()), counts  # the other fix did change the graph
    onnx.save(model, out)
    return out


def on_standin_310p3(repo: Path, model: Path, case: Path) -> Path:
    """`model` compiled by the stand-in ATC (its default force_fp16 rounds the float constants
    through fp16, as the chip does) and run by the stand-in ais_bench; the outputs folder."""
    env = standin_env(repo)
    om = case / "om" / "model_bs1.om"
    run([sys.executable, "-m", "zoorepro.steps.compile", "--target", "310P3", "--onnx", str(model), "--batch-size",
         "1", "--out", str(om), "--versions", str(case / "om" / "versions.json")], cwd=repo, env_extra=env)
    run([sys.executable, "-m", "zoorepro.steps.infer", "--target", "310P3", "--model", str(om), "--batch-size", "1",
         "--inputs", *map(str, input_dirs(repo / PREPROCESSED)), "--out-dir", str(case / "outputs")],
        cwd=repo, env_extra=env)
    return case / "outputs"


@pytest.mark.parametrize("skipped", ["fix_mul", "fix_gather"])
def test_fault_fix_onnx_step_skipped_is_neutral_on_onnxruntime(repo, tmp_path, skipped):
    """FINDING, not a detection: on onnxruntime in fp32 (the cpu target) neither fix changes a
    number, so the planted claims stay REPRODUCED. fix_mul protects against fp16 overflow of
    finfo(float32).min, which the stand-in ATC models (see the next test); fix_gather
    against ATC's handling of a Gather with index -1, which onnxruntime computes exactly as the
    Slice + Squeeze that replaces it. This test fails (and must be turned into a detection test)
    the day the chain can see either fault."""
    model = fixed_without(repo, skipped, tmp_path / "model.onnx")
    infer(repo, model, input_dirs(repo / PREPROCESSED), tmp_path / "outputs")
    rows, audit = judged(repo, postprocess(repo, tmp_path / "outputs", repo / PREPROCESSED, tmp_path), tmp_path)
    assert {m: rows[m]["verdict"] for m in METRICS} == {m: "REPRODUCED" for m in METRICS}
    reference = np.load(repo / MINI / "cpu/outputs/0_0.npy")
    assert np.abs(np.load(tmp_path / "outputs/0_0.npy") - reference).max() < 1e-5


def test_fault_fix_mul_skipped_is_detected_on_the_standin_atc(repo, tmp_path):
    """Through the stand-in ATC (force_fp16: float constants rounded to fp16) and ais_bench, the
    graph without fix_mul computes NaN (0 * -inf in allennlp's apply_mask) and the planted claims
    catch it; the fixed graph on the same tools still reproduces them (the planted margins hold
    against fp16 weights)."""
    fixed = on_standin_310p3(repo, repo / MINI / "onnx/vqa-vilbert_bs1_sim_fix.onnx", tmp_path / "fixed")
    rows, _ = judged(repo, postprocess(repo, fixed, repo / PREPROCESSED, tmp_path / "fixed"), tmp_path / "fixed")
    assert {m: rows[m]["verdict"] for m in METRICS} == {m: "REPRODUCED" for m in METRICS}
    case = tmp_path / "unfixed"
    outputs = on_standin_310p3(repo, fixed_without(repo, "fix_mul", tmp_path / "nomul.onnx"), case)
    assert np.isnan(np.load(outputs / "0_0.npy")).all()
    assert_detected(repo, case, postprocess(repo, outputs, repo / PREPROCESSED, case))


# ---- the planting rules, without a model --------------------------------------------------------

def test_threshold_goes_in_the_widest_gap_within_the_positive_fraction():
    from zoorepro.vilbert.planting import POSITIVE_FRACTION, widest_gap

    values = np.linspace(0, 1, 20)
    values[15:] += 1.0  # a gap of 1.05 with 5/20 = 0.25 above it
    threshold = widest_gap(values)
    assert 1.0 < threshold < 1.8 and POSITIVE_FRACTION[0] <= (values > threshold).mean() <= POSITIVE_FRACTION[1]


def test_near_tied_answers_get_the_same_votes_and_ten_answers_in_all():
    from zoorepro.vilbert.planting import MARGIN, plant_row

    columns = ["@@PADDING@@", "@@UNKNOWN@@", "red", "blue", "1", "2", "yes"]
    row = np.array([-5.0, -4.0, 3.0, 3.0 - MARGIN / 2, 1.0, -1.0, 0.0])
    for seed in range(20):
        answers = plant_row(row, columns, ["dog", "cat"], np.random.default_rng(seed))
        assert len(answers) == 10
        assert answers.count("red") == answers.count("blue")  # either may win the argmax on a chip


def test_out_of_vocabulary_argmax_gets_no_oov_fillers_beside_its_votes():
    from zoorepro.vilbert.planting import plant_row

    columns = ["@@PADDING@@", "@@UNKNOWN@@", "red", "blue", "1"]
    row = np.array([-5.0, 4.0, 1.0, -1.0, 0.7])
    for seed in range(20):
        answers = plant_row(row, columns, ["dog", "cat", "tree"], np.random.default_rng(seed))
        oov = [a for a in answers if a not in columns]
        assert len(oov) in (0, 1, 2, 3) and len(set(oov)) <= 1  # one OOV answer, with the planted votes
