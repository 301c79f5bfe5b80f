"""The one compare step (zoorepro.steps.compare): ais_bench folders and single arrays, the numbers
it reports, harness statistics, and refusals."""
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

from zoorepro.errors import ZooreproError
from zoorepro.steps.compare import compare, max_abs_and_min_cosine


def write_outputs(folder, arrays_by_sample):
    folder.mkdir(parents=True)
    for sample, outputs in arrays_by_sample.items():
        for k, a in enumerate(outputs):
            np.save(folder / f"{sample}_{k}.npy", a)
    return folder


def test_max_abs_and_min_cosine_by_hand():
    ref = np.array([[1.0, 0.0], [0.0, 2.0]])
    got = np.array([[1.0, 0.5], [0.0, -2.0]])
    max_abs, min_cos = max_abs_and_min_cosine(ref, got)
    assert max_abs == pytest.approx(4.0)
    assert min_cos == pytest.approx(-1.0)  # the second row points the other way
    assert max_abs_and_min_cosine(np.zeros((1, 3)), np.zeros((1, 3))) == (0.0, 1.0)


def test_folders_compare_the_references_samples_per_output(tmp_path):
    rng = np.random.default_rng(0)
    samples = {str(i): [rng.standard_normal((1, 5)).astype(np.float32), rng.random((1, 5)).astype(np.float32)]
               for i in range(12)}
    ref = write_outputs(tmp_path / "ref", {k: v for k, v in samples.items() if int(k) < 10})  # first 10 only
    got = {k: [v[0] + 1e-3, v[1]] for k, v in samples.items()}
    out = write_outputs(tmp_path / "out", got)
    records = compare(ref, out, ["logits", "probs"], [], 1, "fp16", "golden")
    by = {r.metric: r for r in records}
    assert by["parity_max_abs_logits"].value == pytest.approx(1e-3, rel=1e-3)
    assert by["parity_max_abs_probs"].value == 0.0 and by["parity_min_cosine_probs"].value == pytest.approx(1.0)
    assert "10 samples" in by["parity_max_abs_logits"].note and "golden" in by["parity_max_abs_logits"].note
    assert all(r.kind == "parity" and r.precision == "fp16" and r.batch_size == 1 for r in records)
    assert all(r.raw == (str(ref), str(out)) for r in records)


def test_a_missing_output_or_another_shape_is_refused(tmp_path):
    ref = write_outputs(tmp_path / "ref", {"0": [np.ones((1, 3))], "1": [np.ones((1, 3))]})
    out = write_outputs(tmp_path / "out", {"0": [np.ones((1, 3))]})
    with pytest.raises(ZooreproError, match="missing output"):
        compare(ref, out, ["x"], [], 1, "", "r")
    other = write_outputs(tmp_path / "other", {"0": [np.ones((1, 4))], "1": [np.ones((1, 4))]})
    with pytest.raises(ZooreproError, match="shapes differ"):
        compare(ref, other, ["x"], [], 1, "", "r")


def test_arrays_with_general_perf_statistics_match_bytemlperfs_numeric_check(tmp_path):
    from zoorepro.backends.ixrt.bytemlperf import numeric_diff

    rng = np.random.default_rng(1)
    ref = rng.standard_normal((5, 4, 100)).astype(np.float32)   # open_cifar.npy: batches x bs x classes
    got = ref + rng.normal(0, 1e-2, ref.shape).astype(np.float32)
    np.save(tmp_path / "ref.npy", ref)
    np.save(tmp_path / "got.npy", got)
    records = compare(tmp_path / "ref.npy", tmp_path / "got.npy", ["logits_per_image"], ["general_perf"], 4,
                      "fp16", "cpu")
    by = {r.metric: r.value for r in records}
    diff = numeric_diff(list(ref), list(got))
    assert by["numeric_max_diff"] == diff["Max Diff"] and by["numeric_mean_rel_diff"] == diff["Mean Rel-Diff"]
    assert by["parity_max_abs_logits_per_image"] == pytest.approx(float(np.max(np.abs(ref - got))), rel=1e-6)
    rows = ref.reshape(-1, 100).astype(np.float64), got.reshape(-1, 100).astype(np.float64)
    cos = np.sum(rows[0] * rows[1], axis=1) / (np.linalg.norm(rows[0], axis=1) * np.linalg.norm(rows[1], axis=1))
    assert by["parity_min_cosine_logits_per_image"] == pytest.approx(float(cos.min()), abs=1e-12)


def test_cli_writes_records_and_answers_help(tmp_path):
    np.save(tmp_path / "a.npy", np.ones((2, 3)))
    np.save(tmp_path / "b.npy", np.ones((2, 3)) * 2)
    proc = subprocess.run([sys.executable, "-m", "zoorepro.steps.compare", "--reference", str(tmp_path / "a.npy"),
                           "--outputs", str(tmp_path / "b.npy"), "--output-names", "y", "--batch-size", "2",
                           "--measurements", str(tmp_path / "m.json")], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    records = json.loads((tmp_path / "m.json").read_text())
    assert [(r["metric"], r["value"]) for r in records] == [("parity_max_abs_y", 1.0), ("parity_min_cosine_y", 1.0)]
    bad = subprocess.run([sys.executable, "-m", "zoorepro.steps.compare", "--reference", str(tmp_path / "nope"),
                          "--outputs", str(tmp_path / "b.npy"), "--output-names", "y",
                          "--measurements", str(tmp_path / "n.json")], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2 and "no such output" in bad.stderr and not (tmp_path / "n.json").exists()
