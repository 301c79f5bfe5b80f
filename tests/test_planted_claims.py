"""Planted claims (zoorepro/planted.py): written and validated by a mini generator, joined by mini
tables only, judged with the tight planted tolerance, counted and failed on by the audit."""
import json
import subprocess
import sys

import pytest

from zoorepro.audit import audit
from zoorepro.claims import DEFAULT_CLAIMS_PATH, ClaimsError, load_claims, load_planted, load_registry
from zoorepro.errors import ZooreproError
from zoorepro.planted import PlantedMetric, slug, write_planted_claims
from zoorepro.report import make_table, read_table
from zoorepro.verdicts import RunContext

TOL = {"throughput_relative": 0.10, "accuracy_points": 1.0, "planted_points": 0.01}
MINI_CPU = RunContext("vilbert", "cpu", "cpu", "mini")


def plant(folder, metrics=None):
    metrics = metrics or [PlantedMetric("vqa_score", 0.6125, "fraction"), PlantedMetric("fscore", 0.4375, "fraction")]
    return write_planted_claims(folder, "vilbert", "zoorepro.vilbert.make_mini", "mini VQA v2 (seed 0)",
                                "allennlp VqaMeasure on the eager model", metrics)


def measurements(path, vqa, fscore=0.4375):
    path.write_text(json.dumps([
        {"metric": "vqa_score", "kind": "accuracy", "value": vqa, "unit": "fraction"},
        {"metric": "fscore", "kind": "accuracy", "value": fscore, "unit": "fraction"}]))
    return str(path)


def test_slugs_follow_the_registry_ids():
    assert [slug(m) for m in ("R@1", "MedianR", "MeanR", "vqa_score", "top1")] == [
        "r_at_1", "median_r", "mean_r", "vqa_score", "top1"]


def test_planted_file_round_trips_and_is_validated(tmp_path):
    claims = plant(tmp_path)
    assert [c.id for c in claims] == ["vilbert.mini.vqa_score", "vilbert.mini.fscore"]
    assert load_planted(tmp_path / "planted_claims.yaml") == claims
    assert all(c.planted and c.target == "any" and c.document == "planted:zoorepro.vilbert.make_mini" for c in claims)
    with pytest.raises(ClaimsError, match="top1"):  # not a ViLBERT metric
        plant(tmp_path / "bad", [PlantedMetric("top1", 50.0, "percent")])
    assert not (tmp_path / "bad" / "planted_claims.yaml").exists()


def test_scales_never_mix_in_claim_files(tmp_path):
    plant(tmp_path)
    with pytest.raises(ClaimsError, match="does not belong in the claims registry"):
        load_registry(tmp_path / "planted_claims.yaml")
    with pytest.raises(ClaimsError, match="does not belong in a planted claims file"):
        load_planted(DEFAULT_CLAIMS_PATH)
    assert not any(c.planted for c in load_claims())


def test_mini_table_judges_planted_claims_tightly_and_documents_stay_not_comparable(tmp_path):
    plant(tmp_path)
    ok = make_table(MINI_CPU, [measurements(tmp_path / "ok.json", 0.61255)], load_claims(), TOL,
                    tmp_path / "results/mini/vilbert_cpu.csv", planted=tmp_path / "planted_claims.yaml")
    by_id = {r["claim_id"]: r for r in ok.rows}
    assert by_id["vilbert.mini.vqa_score"]["verdict"] == "REPRODUCED"    # +0.005 pt
    assert by_id["vilbert.mini.vqa_score"]["tolerance"] == "±0.01 pt (planted)"
    assert by_id["vilbert.310P3.vqa_score"]["verdict"] == "NOT_COMPARABLE"
    bad = make_table(MINI_CPU, [measurements(tmp_path / "bad.json", 0.6125 - 1 / 48 * 0.3)], load_claims(), TOL,
                     tmp_path / "bad/vilbert_cpu.csv", planted=tmp_path / "planted_claims.yaml")
    assert {r["claim_id"]: r for r in bad.rows}["vilbert.mini.vqa_score"]["verdict"] == "OUT_OF_TOLERANCE"
    prov = json.loads((tmp_path / "results/mini/vilbert_cpu.provenance.json").read_text())
    assert [c["id"] for c in prov["planted"]["claims"]] == ["vilbert.mini.vqa_score", "vilbert.mini.fscore"]


def test_planted_claims_refuse_full_tables_and_other_models(tmp_path):
    plant(tmp_path)
    m = measurements(tmp_path / "m.json", 0.6)
    with pytest.raises(ZooreproError, match="mini tables only"):
        make_table(RunContext("vilbert", "cpu", "cpu", "full"), [m], load_claims(), TOL, tmp_path / "t.csv",
                   planted=tmp_path / "planted_claims.yaml")
    with pytest.raises(ZooreproError, match="not of actbert"):
        make_table(RunContext("actbert", "cpu", "cpu", "mini"), [m], load_claims(), TOL, tmp_path / "t.csv",
                   planted=tmp_path / "planted_claims.yaml")


def test_audit_counts_planted_claims_per_table_and_fails_on_one_out_of_tolerance(tmp_path):
    plant(tmp_path)
    results = tmp_path / "results"
    planted = tmp_path / "planted_claims.yaml"
    make_table(MINI_CPU, [measurements(tmp_path / "a.json", 0.6125)], load_claims(), TOL,
               results / "mini/vilbert_cpu.csv", planted=planted)
    result = audit(load_claims(), results, results / "audit.md")
    assert result.failed == []
    assert "planted 2/2 REPRODUCED" in result.summary and result.summary.startswith("zoorepro audit: OK")
    # at mini scale no document claim is comparable, measured (4) or not (16)
    assert "documents 20 NOT_COMPARABLE\n" in result.summary and "NOT_COMPARABLE 20: mini scale" in result.summary
    assert "| vilbert.mini.vqa_score |" in (results / "audit.md").read_text()
    make_table(RunContext("vilbert", "310P3", "310P3", "mini", standin=True),
               [measurements(tmp_path / "b.json", 0.6125, fscore=0.40)], load_claims(), TOL,
               results / "mini/vilbert_310P3.csv", planted=planted)
    result = audit(load_claims(), results, None)
    assert result.failed == ["vilbert.mini.fscore"]
    assert "planted 1/2 REPRODUCED, 1 OUT_OF_TOLERANCE" in result.summary
    proc = subprocess.run([sys.executable, "-m", "zoorepro", "audit", "--results", str(results), "--out", ""],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert "vilbert.mini.fscore" in proc.stderr
    # the first screen: the status, then the failure with its reason, before the per-table counts
    status, _, rest = proc.stdout.partition("\n\nFailures:\n")
    assert status.startswith("zoorepro audit: FAILED") and "\x1b[" not in proc.stdout  # no colours off a TTY
    assert rest.startswith("- OUT_OF_TOLERANCE vilbert.mini.fscore: reported 0.")
    assert rest.index("vilbert.mini.fscore") < rest.index("Per table:")


def test_audit_refuses_tables_judged_against_different_planted_values(tmp_path):
    results = tmp_path / "results"
    plant(tmp_path / "one")
    plant(tmp_path / "two", [PlantedMetric("vqa_score", 0.5, "fraction")])
    m = measurements(tmp_path / "m.json", 0.6125)
    make_table(MINI_CPU, [m], load_claims(), TOL, results / "mini/vilbert_cpu.csv",
               planted=tmp_path / "one/planted_claims.yaml")
    make_table(RunContext("vilbert", "310", "310", "mini"), [m], load_claims(), TOL, results / "mini/vilbert_310.csv",
               planted=tmp_path / "two/planted_claims.yaml")
    with pytest.raises(ZooreproError, match="vilbert.mini.vqa_score"):
        audit(load_claims(), results, None)
    assert read_table(results / "mini/vilbert_310.csv")


def test_a_planted_value_missed_the_better_way_is_out_of_tolerance_too(tmp_path):
    plant(tmp_path)
    bad = make_table(MINI_CPU, [measurements(tmp_path / "m.json", 0.6125 + 0.05)], load_claims(), TOL,
                     tmp_path / "results/mini/vilbert_cpu.csv", planted=tmp_path / "planted_claims.yaml")
    row = {r["claim_id"]: r for r in bad.rows}["vilbert.mini.vqa_score"]
    assert row["verdict"] == "OUT_OF_TOLERANCE" and row["note"] == "+5.00 pt vs claim"
