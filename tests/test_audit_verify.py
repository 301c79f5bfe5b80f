"""The audit verifies each table before it counts it: tampered, truncated, empty, renamed-column,
re-scaled or moved tables are INVALID (named, with the reason, exit 1), never silently NOT_RUN."""
import subprocess
import sys

import pytest

from zoorepro import lineage
from zoorepro.audit import audit
from zoorepro.claims import load_claims
from zoorepro.measurements import Measurement, write_measurements
from zoorepro.planted import PlantedMetric, write_planted_claims
from zoorepro.provenance import git_state
from zoorepro.report import make_table
from zoorepro.verdicts import RunContext

TOL = {"throughput_relative": 0.10, "accuracy_points": 1.0, "planted_points": 0.01}


@pytest.fixture
def results(tmp_path, monkeypatch):
    """A valid mini ViLBERT table judged against a planted claim, its raw output in work/."""
    monkeypatch.chdir(tmp_path)
    write_planted_claims(tmp_path / "data", "vilbert", "zoorepro.vilbert.make_mini", "mini", "a test",
                         [PlantedMetric("vqa_score", 0.6, "fraction")])
    raw = tmp_path / "work" / "outputs.json"
    raw.parent.mkdir()
    raw.write_text("[1, 2, 3]")
    lineage.record("work/outputs.json", [])
    m = tmp_path / "m.json"
    write_measurements(m, [Measurement("vqa_score", "accuracy", 0.6, "fraction", raw=("work/outputs.json",))])
    make_table(RunContext("vilbert", "cpu", "cpu", "mini"), [str(m)], load_claims(), TOL,
               tmp_path / "results/mini/vilbert_cpu.csv", planted=tmp_path / "data/planted_claims.yaml")
    return tmp_path / "results"


def table(results):
    return results / "mini" / "vilbert_cpu.csv"


def problems(results, verify_raw=False):
    result = audit(load_claims(), results, None, verify_raw)
    return [p for c in result.checks for p in c.problems], result


def test_a_table_as_written_is_valid_and_counted(results):
    found, result = problems(results, verify_raw=True)
    assert found == [] and result.failed == []
    assert "planted 1/1 REPRODUCED" in result.summary


@pytest.mark.parametrize("tamper, reason", [
    (lambda t: t.write_bytes(t.read_bytes()[: len(t.read_bytes()) // 2]), "changed after it was written"),
    (lambda t: t.write_text(""), "no rows"),
    (lambda t: t.write_text(t.read_text().replace("reproduced", "value", 1)), "columns differ"),
    (lambda t: t.write_text(t.read_text().replace(",mini,", ",full,").replace("NOT_COMPARABLE", "REPRODUCED")),
     "scale 'full' in a 'mini' table"),
    (lambda t: t.with_suffix(".provenance.json").unlink(), "no provenance"),
])
def test_a_tampered_table_is_invalid_named_and_fails_the_audit(results, tamper, reason):
    tamper(table(results))
    found, result = problems(results)
    assert any(reason in p for p in found), found
    assert any("vilbert_cpu.csv (INVALID" in f for f in result.failed)
    statuses = {s.claim.id: s.verdict for s in result.statuses}
    assert statuses["vilbert.310P3.vqa_score"] == "INVALID"  # not silently NOT_RUN
    proc = subprocess.run([sys.executable, "-m", "zoorepro", "audit", "--results", str(results), "--out", ""],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert "vilbert_cpu.csv" in proc.stderr and "INVALID" in proc.stderr


def test_a_mini_table_moved_into_the_full_folder_is_invalid(results):
    table(results).rename(results / "vilbert_cpu.csv")
    table(results).with_suffix(".provenance.json").rename(results / "vilbert_cpu.provenance.json")
    found, _ = problems(results)
    assert any("provenance says scale 'mini'" in p for p in found)
    assert any("full-scale table judged against planted" in p for p in found)


def test_raw_outputs_are_rehashed_on_request_and_absent_ones_reported(results):
    raw = results.parent / "work" / "outputs.json"
    raw.write_text("[1, 2, 4]")
    assert problems(results)[0] == []  # without --verify-raw the raw outputs are not read
    found, _ = problems(results, verify_raw=True)
    assert found == ["raw output work/outputs.json differs from the sha256 the table was computed from"]
    raw.unlink()
    found, result = problems(results, verify_raw=True)
    assert found == [] and "not present to verify" in result.summary


def test_provenance_fails_closed_when_git_cannot_read_the_repo(tmp_path):
    state = git_state(tmp_path)
    assert state["commit"] is None and state["dirty"] is True and state["unknown"]


@pytest.mark.parametrize("provenance", ["{}", "[]", '{"run": {}}'])
def test_a_provenance_without_the_tables_record_is_invalid_not_skipped(results, provenance):
    t = table(results)
    t.write_text(t.read_text().replace("NOT_COMPARABLE", "BETTER"))
    t.with_suffix(".provenance.json").write_text(provenance)
    found, result = problems(results)
    assert any("lacks the table's record or its run" in p for p in found), found
    assert result.failed


def test_a_mini_table_without_planted_claims_or_missing_a_planted_row_is_invalid(results):
    import json

    prov_path = table(results).with_suffix(".provenance.json")
    prov = json.loads(prov_path.read_text())
    prov["planted"]["claims"].append({**prov["planted"]["claims"][0], "id": "vilbert.mini.fscore", "metric": "fscore"})
    prov_path.write_text(json.dumps(prov))
    assert any("planted claims with no row: vilbert.mini.fscore" in p for p in problems(results)[0])
    del prov["planted"]
    prov_path.write_text(json.dumps(prov))
    assert any("without its model's planted claims" in p for p in problems(results)[0])


def test_a_planted_claim_left_unmeasured_fails_the_audit(tmp_path, monkeypatch):
    """A step that stops emitting a planted metric: the table lists the claim NOT_RUN; the audit
    must not pass it (the chain lost a number it is known to compute)."""
    monkeypatch.chdir(tmp_path)
    write_planted_claims(tmp_path / "data", "vilbert", "zoorepro.vilbert.make_mini", "mini", "a test",
                         [PlantedMetric("vqa_score", 0.6, "fraction"), PlantedMetric("fscore", 0.5, "fraction")])
    m = tmp_path / "m.json"
    write_measurements(m, [Measurement("vqa_score", "accuracy", 0.6, "fraction")])
    make_table(RunContext("vilbert", "cpu", "cpu", "mini"), [str(m)], load_claims(), TOL,
               tmp_path / "results/mini/vilbert_cpu.csv", planted=tmp_path / "data/planted_claims.yaml")
    result = audit(load_claims(), tmp_path / "results", None)
    assert result.failed == ["vilbert.mini.fscore"]
