"""Implied % of peak and IMPLAUSIBLE (zoorepro/plausibility.py): every throughput claim set against
its chip's peak (zoorepro/peaks.yaml) with the FLOPs a sample of its model's full-size graph
(claims/flops.yaml); a claim above 100 % is IMPLAUSIBLE in the tables and the audit, which say
which reading would make it possible."""
from __future__ import annotations

import dataclasses
import json

import pytest
from test_report_audit import TOL, rows_by, write_measurements

from zoorepro.audit import audit
from zoorepro.claims import load_claims
from zoorepro.flops import load_registry
from zoorepro.plausibility import implied, why_not
from zoorepro.report import make_table
from zoorepro.verdicts import IMPLAUSIBLE, REPRODUCED, RunContext, plausibility

REGISTRY = {"vilbert": {"flops_per_sample": 20e9, "per_batch_size": {1: 20e9, 16: 20e9}}}


def claim(claim_id: str, **change):
    found = next(c for c in load_claims() if c.id == claim_id)
    return dataclasses.replace(found, **change)


def test_the_implied_percent_is_rate_times_flops_over_the_peak():
    c = claim("vilbert.310.throughput.bs16")  # 236 fps on an Ascend 310: fp16 peak 8 TFLOP/s
    found = implied(c, REGISTRY)
    assert found.percent == pytest.approx(100 * 236 * 20e9 / 8e12)
    assert found.reading == "samples/s" and found.other_reading == "batches/s of bs16"
    assert found.other_percent == pytest.approx(16 * found.percent)
    assert not found.implausible
    # plausible as samples/s, not as batches/s: the note says the number can only be samples/s
    assert "cannot be batches/s of bs16" in found.text() and "HUAWEI CONNECT 2018" in found.text()


def test_a_claim_above_the_peak_is_implausible_and_says_which_reading_would_fit():
    c = claim("vilbert.310.throughput.bs16", value=500)  # 500 x 20 GFLOP = 10 TFLOP/s > 8
    found = implied(c, REGISTRY)
    assert found.implausible and found.percent == pytest.approx(125.0)
    verdict, note = plausibility(c, "NOT_COMPARABLE", REGISTRY)
    assert verdict == IMPLAUSIBLE
    assert note.startswith("IMPLAUSIBLE: implies 125.0 % of 310's fp16 peak read as samples/s")
    assert "as a per-card figure of Atlas 300I inference card (model 3000) (31.2 % of its 4 chips' peak)" in note
    far = implied(claim("vilbert.310.throughput.bs16", value=5000), REGISTRY)
    assert "no reading fits" in far.text() and "needs 12.50x the peak" in far.text()
    # a comparable run's verdict stands: REPRODUCED says the FLOPs or peak data is wrong, and an
    # OUT_OF_TOLERANCE must still fail the audit
    assert plausibility(c, REPRODUCED, REGISTRY)[0] == REPRODUCED
    assert plausibility(c, "OUT_OF_TOLERANCE", REGISTRY) == ("OUT_OF_TOLERANCE", note)


def test_a_claim_registered_as_batches_per_second_is_assessed_that_way():
    from zoorepro.claims import Reading

    c = claim("vilbert.310.throughput.bs16", value=40,
              reading=Reading(metric="throughput_batches", batch_size=16, why="the tool counts batches"))
    found = implied(c, REGISTRY)  # 40 batches/s x 16 x 20 GFLOP = 12.8 TFLOP/s on an 8 TFLOP/s chip
    assert found.reading == "batches/s of bs16" and found.percent == pytest.approx(160.0)
    assert found.implausible and found.other_percent == pytest.approx(10.0)
    assert "plausible only as samples/s (10.0 %)" in found.text()


def test_claims_that_cannot_be_assessed_say_why():
    assert "no FLOPs count for videobert" in why_not(claim("videobert.mrv100.throughput.bs4"), REGISTRY)
    assert implied(claim("vilbert.310.throughput.bs16", target="npu"), REGISTRY) is None
    assert "no fp16 peak listed for npu" in why_not(claim("vilbert.310.throughput.bs16", target="npu"), REGISTRY)
    assert implied(claim("vilbert.reference.vqa_score"), REGISTRY) is None  # accuracy: nothing to assess


def test_the_committed_registry_was_counted_from_the_graph():
    entry = load_registry()["vilbert"]
    assert entry["counted_by"] == "python -m zoorepro.vilbert.count_flops"
    assert "MatMul" in entry["method"] and 15e9 < entry["flops_per_sample"] < 30e9
    assert "10026 answers" in entry["shapes"] and "pad_len 32, 100 boxes" in entry["shapes"]


def test_tables_and_the_audit_show_an_implausible_claim(tmp_path, monkeypatch):
    import zoorepro.audit
    import zoorepro.report

    fast = {**REGISTRY, "vilbert": {"flops_per_sample": 200e9, "per_batch_size": {}}}  # 10x: 310 claims > 100 %
    monkeypatch.setattr(zoorepro.report, "load_registry", lambda: fast)
    monkeypatch.setattr(zoorepro.audit, "load_registry", lambda: fast)
    m = write_measurements(tmp_path / "m.json", [
        {"metric": "throughput", "kind": "throughput", "batch_size": 1, "value": 190.0, "unit": "samples/s"}])
    ctx = RunContext(model="vilbert", target="310P3", hardware="310P3", scale="full")
    rows = make_table(ctx, [m], load_claims(), TOL, tmp_path / "results" / "vilbert_310P3.csv").rows
    row = rows_by(rows, claim_id="vilbert.310.throughput.bs1")[0]  # 200 fps x 200 GFLOP = 40 TFLOP/s on an 8 TFLOP/s chip
    assert row["verdict"] == IMPLAUSIBLE and "500.0 % of 310's fp16 peak" in row["note"]
    assert rows_by(rows, claim_id="vilbert.310P3.throughput.bs1")[0]["verdict"] == "REPRODUCED"  # 190 vs 187
    result = audit(load_claims(), tmp_path / "results", tmp_path / "audit.md")
    assert result.failed == []  # a finding about the document, not a failure of the chain
    summary = result.summary
    assert "Implausible claims (more than the chip's peak compute):" in summary
    assert "- IMPLAUSIBLE vilbert.310.throughput.bs1 (200 fps at bs1): implies 500.0 %" in summary
    assert summary.index("Implausible claims") < summary.index("Per table:")
    statuses = {s["id"]: s for s in result.json["claims"]}
    assert statuses["vilbert.310.throughput.bs64"]["verdict"] == IMPLAUSIBLE  # not measured: the claim alone
    assert statuses["vilbert.310P3.throughput.bs1"]["implied_percent_of_peak"] == pytest.approx(187 * 200e9 / 70e12 * 100)
    assert "| vilbert.310.throughput.bs1 |" in (tmp_path / "audit.md").read_text()
    json.dumps(result.json)


def test_a_shape_table_compares_throughput_on_the_claimed_chip_and_runs_no_accuracy(tmp_path):
    m = write_measurements(tmp_path / "m.json", [
        {"metric": "throughput", "kind": "throughput", "batch_size": 1, "value": 190.0, "unit": "samples/s"}])
    shape = RunContext(model="vilbert", target="310P3", hardware="310P3", scale="shape")
    rows = make_table(shape, [m], load_claims(), TOL, tmp_path / "results" / "shape" / "vilbert_310P3.csv").rows
    assert rows_by(rows, claim_id="vilbert.310P3.throughput.bs1")[0]["verdict"] == "REPRODUCED"  # as at full
    assert rows_by(rows, claim_id="vilbert.310.throughput.bs1")[0]["verdict"] == "NOT_COMPARABLE"  # another chip
    accuracy = rows_by(rows, claim_id="vilbert.310P3.vqa_score")[0]
    assert accuracy["verdict"] == "NOT_RUN" and accuracy["reproduced"] == ""
    cpu = RunContext(model="vilbert", target="cpu", hardware="cpu", scale="shape")
    rows = make_table(cpu, [m], load_claims(), TOL, tmp_path / "results" / "shape" / "vilbert_cpu.csv").rows
    assert rows_by(rows, claim_id="vilbert.310P3.throughput.bs1")[0]["verdict"] == "NOT_COMPARABLE"
    result = audit(load_claims(), tmp_path / "results", None)
    assert {c.label for c in result.checks} == {"results/shape/vilbert_310P3.csv", "results/shape/vilbert_cpu.csv"}
    assert all(c.valid for c in result.checks), [c.problems for c in result.checks]


def test_an_implausible_claim_measured_out_of_tolerance_on_its_chip_still_fails_the_audit(tmp_path, monkeypatch):
    import zoorepro.audit
    import zoorepro.report

    huge = {"vilbert": {"flops_per_sample": 1000e9, "per_batch_size": {}}}  # every 310P3 claim > 100 %
    monkeypatch.setattr(zoorepro.report, "load_registry", lambda: huge)
    monkeypatch.setattr(zoorepro.audit, "load_registry", lambda: huge)
    m = write_measurements(tmp_path / "m.json", [
        {"metric": "throughput", "kind": "throughput", "batch_size": 1, "value": 20.0, "unit": "samples/s"}])
    ctx = RunContext(model="vilbert", target="310P3", hardware="310P3", scale="full")
    rows = make_table(ctx, [m], load_claims(), TOL, tmp_path / "results" / "vilbert_310P3.csv").rows
    row = rows_by(rows, claim_id="vilbert.310P3.throughput.bs1")[0]
    assert row["verdict"] == "OUT_OF_TOLERANCE" and "IMPLAUSIBLE: implies" in row["note"]
    result = audit(load_claims(), tmp_path / "results", None)
    assert "vilbert.310P3.throughput.bs1" in result.failed
    assert {s.claim.id: s.verdict for s in result.statuses}["vilbert.310P3.throughput.bs4"] == IMPLAUSIBLE


def test_a_shape_table_of_a_model_without_a_shape_chain_is_refused(monkeypatch):
    import copy

    from zoorepro import models
    from zoorepro.config import load_params, validate
    from zoorepro.errors import ConfigError

    params = copy.deepcopy(load_params())
    monkeypatch.setattr(models.pipeline("videobert"), "SCALES", ("mini", "full"))  # as before its shape chain
    params["tables"]["shape"]["videobert"] = ["cpu"]
    with pytest.raises(ConfigError, match=r"tables.shape.videobert: videobert has no shape scale \(its scales: mini, full\)"):
        validate(params)
