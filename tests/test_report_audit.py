"""Verdicts, tables and the audit, on the real registry and on crafted measurements."""
import csv
import json

import pytest

from zoorepro import lineage
from zoorepro.audit import run_audit
from zoorepro.planted import PlantedMetric, write_planted_claims
from zoorepro.claims import load_claims
from zoorepro.report import COLUMNS, make_table, read_table
from zoorepro.verdicts import RunContext

TOL = {"throughput_relative": 0.10, "accuracy_points": 1.0, "planted_points": 0.01}
FULL_310P3 = RunContext(model="vilbert", target="310P3", hardware="310P3", scale="full")


def write_measurements(path, records):
    """Records as a step writes them: each raw output with its lineage record, each record with
    the sha256 of its raw outputs."""
    for r in records:
        for raw in r.get("raw", ()):
            lineage.record(raw, [])
        if r.get("raw"):
            r["lineage"] = lineage.hashes(r["raw"])
    path.write_text(json.dumps(records))
    return str(path)


def rows_by(rows, **match):
    return [r for r in rows if all(str(r[k]) == str(v) for k, v in match.items())]


@pytest.fixture
def claims():
    return load_claims()


def test_throughput_verdicts_against_the_claimed_chip(tmp_path, claims):
    raw = tmp_path / "perf.json"
    raw.write_text("{}")
    m = write_measurements(tmp_path / "m.json", [
        {"metric": "throughput", "kind": "throughput", "batch_size": 1, "value": 190.0, "unit": "samples/s", "raw": [str(raw)]},
        {"metric": "throughput", "kind": "throughput", "batch_size": 4, "value": 300.0, "unit": "samples/s"},
        {"metric": "throughput", "kind": "throughput", "batch_size": 8, "value": 200.0, "unit": "samples/s"},
    ])
    table = make_table(FULL_310P3, [m], claims, TOL, tmp_path / "results" / "vilbert_310P3.csv")
    rows = table.rows
    assert rows_by(rows, claim_id="vilbert.310P3.throughput.bs1")[0]["verdict"] == "REPRODUCED"   # +1.6%
    assert rows_by(rows, claim_id="vilbert.310P3.throughput.bs4")[0]["verdict"] == "BETTER"       # +34.5%
    assert rows_by(rows, claim_id="vilbert.310P3.throughput.bs8")[0]["verdict"] == "OUT_OF_TOLERANCE"  # -46%
    # the 310 claims of the same batch sizes are for other hardware
    assert {r["verdict"] for r in rows_by(rows, claim_target="310")} <= {"NOT_COMPARABLE", "NOT_RUN"}
    assert "claimed on 310" in rows_by(rows, claim_id="vilbert.310.throughput.bs1")[0]["note"]
    # claims not measured here are listed NOT_RUN; accuracy claims too
    assert rows_by(rows, claim_id="vilbert.310P3.throughput.bs64")[0]["verdict"] == "NOT_RUN"
    assert rows_by(rows, claim_id="vilbert.reference.vqa_score")[0]["verdict"] == "NOT_RUN"
    # the row with raw outputs carries their hash, and provenance names the file and its sha256
    prov = json.loads((tmp_path / "results" / "vilbert_310P3.provenance.json").read_text())
    assert prov["raw"][str(raw)]["sha256"] == "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    assert rows_by(rows, claim_id="vilbert.310P3.throughput.bs1")[0]["raw_sha256"]
    assert {"git", "packages", "host", "run"} <= set(prov)
    assert prov["packages"]["python"]
    metrics = json.loads((tmp_path / "results" / "vilbert_310P3.metrics.json").read_text())
    assert metrics["vilbert"]["310P3"]["bs1"]["throughput"] == 190.0


def test_accuracy_is_comparable_across_hardware_in_points(tmp_path, claims):
    ctx = RunContext(model="vilbert", target="cpu", hardware="cpu", scale="full")
    m = write_measurements(tmp_path / "m.json", [
        {"metric": "vqa_score", "kind": "accuracy", "batch_size": None, "value": 0.9305, "unit": "fraction"},
        {"metric": "recall", "kind": "accuracy", "batch_size": None, "value": 0.53, "unit": "fraction"},
        {"metric": "fscore", "kind": "accuracy", "batch_size": None, "value": 0.60, "unit": "fraction"},
        {"metric": "parity_max_abs_logits", "kind": "parity", "batch_size": 1, "value": 1e-6, "unit": "abs"},
    ])
    rows = make_table(ctx, [m], claims, TOL, tmp_path / "vilbert_cpu.csv").rows
    assert rows_by(rows, claim_id="vilbert.310P3.vqa_score")[0]["verdict"] == "REPRODUCED"   # -0.55 pt
    assert rows_by(rows, claim_id="vilbert.reference.vqa_score")[0]["verdict"] == "REPRODUCED"  # -0.95 pt
    assert rows_by(rows, claim_id="vilbert.310P3.recall")[0]["verdict"] == "BETTER"          # +1.9 pt
    assert rows_by(rows, claim_id="vilbert.310P3.fscore")[0]["verdict"] == "OUT_OF_TOLERANCE"
    assert rows_by(rows, metric="parity_max_abs_logits")[0]["verdict"] == "NO_CLAIM"


def test_lower_is_better_ranks(tmp_path, claims):
    ctx = RunContext(model="actbert", target="cpu", hardware="cpu", scale="full")
    m = write_measurements(tmp_path / "m.json", [
        {"metric": "MedianR", "kind": "accuracy", "value": 11.0, "unit": "rank"},
        {"metric": "MeanR", "kind": "accuracy", "value": 31.0, "unit": "rank"},
    ])
    rows = make_table(ctx, [m], claims, TOL, tmp_path / "actbert_cpu.csv").rows
    assert rows_by(rows, metric="MedianR")[0]["verdict"] == "BETTER"
    assert rows_by(rows, metric="MeanR")[0]["verdict"] == "OUT_OF_TOLERANCE"


@pytest.mark.parametrize("ctx, reason", [
    (RunContext("vilbert", "310P3", "310P3", "mini"), "mini scale"),
    (RunContext("vilbert", "310P3", "310P3", "full", standin=True), "stand-in"),
])
def test_mini_scale_and_standin_tools_are_never_comparable(tmp_path, claims, ctx, reason):
    m = write_measurements(tmp_path / "m.json", [
        {"metric": "throughput", "kind": "throughput", "batch_size": 1, "value": 187.0, "unit": "samples/s"},
        {"metric": "vqa_score", "kind": "accuracy", "value": 0.936, "unit": "fraction"}])
    rows = make_table(ctx, [m], claims, TOL, tmp_path / "t.csv").rows
    measured = [r for r in rows if r["reproduced"]]
    assert measured and {r["verdict"] for r in measured} == {"NOT_COMPARABLE"}
    assert all(reason in r["note"] for r in measured)


def test_table_csv_has_the_documented_columns(tmp_path, claims):
    m = write_measurements(tmp_path / "m.json", [])
    make_table(FULL_310P3, [m], claims, TOL, tmp_path / "vilbert_310P3.csv")
    with open(tmp_path / "vilbert_310P3.csv") as f:
        header = next(csv.reader(f))
    assert tuple(header) == COLUMNS
    for col in ("model", "target", "scale", "batch_size", "precision", "metric", "unit", "reproduced",
                "reported", "source", "tolerance", "verdict", "note"):
        assert col in header


def test_audit_lists_every_claim_and_fails_only_on_comparable_misses(tmp_path, claims):
    results = tmp_path / "results"
    (results / "mini").mkdir(parents=True)
    ok = write_measurements(tmp_path / "ok.json", [
        {"metric": "vqa_score", "kind": "accuracy", "value": 0.2, "unit": "fraction"}])
    planted = write_planted_claims(tmp_path, "vilbert", "zoorepro.vilbert.make_mini", "mini", "a test",
                                   [PlantedMetric("vqa_score", 0.2, "fraction")])
    make_table(RunContext("vilbert", "cpu", "cpu", "mini"), [ok], claims, TOL, results / "mini" / "vilbert_cpu.csv",
               planted=tmp_path / "planted_claims.yaml")
    text, status = run_audit(claims, results, results / "audit.md")
    assert status == 0 and [c.id for c in planted] == ["vilbert.mini.vqa_score"]
    assert all(c.id in text for c in claims) and len(claims) == 36
    line = next(l for l in text.splitlines() if l.startswith("| vilbert.310P3.vqa_score "))
    assert "NOT_COMPARABLE" in line
    assert "NOT_RUN" in next(l for l in text.splitlines() if l.startswith("| actbert.any.r_at_1 "))
    bad = write_measurements(tmp_path / "bad.json", [
        {"metric": "vqa_score", "kind": "accuracy", "value": 0.2, "unit": "fraction"}])
    make_table(RunContext("vilbert", "cpu", "cpu", "full"), [bad], claims, TOL, results / "vilbert_cpu.csv")
    text, status = run_audit(claims, results, results / "audit.md")
    assert status == 1
    assert "OUT_OF_TOLERANCE" in next(l for l in text.splitlines() if l.startswith("| vilbert.310P3.vqa_score "))
    assert (results / "audit.md").read_text() == text
    assert read_table(results / "vilbert_cpu.csv")[0]["scale"] == "full"


def test_a_claim_with_a_reading_is_compared_with_that_reading_only(tmp_path, claims):
    """VideoBERT's QPS 37.68 (README: bs4) is compared with ixrtexec's batches/s at bs16; the
    other readings stay in the table as rows with no claim."""
    ctx = RunContext(model="videobert", target="mrv100", hardware="mrv100", scale="full")
    m = write_measurements(tmp_path / "m.json", [
        {"metric": "throughput_batches", "kind": "throughput", "batch_size": 16, "value": 38.0, "unit": "batches/s"},
        {"metric": "throughput", "kind": "throughput", "batch_size": 16, "value": 608.0, "unit": "samples/s"},
        {"metric": "throughput", "kind": "throughput", "batch_size": 4, "value": 37.0, "unit": "samples/s"},
        {"metric": "top1", "kind": "accuracy", "batch_size": 4, "value": 61.2, "unit": "percent"},
    ])
    rows = make_table(ctx, [m], claims, TOL, tmp_path / "videobert_mrv100.csv").rows
    qps = rows_by(rows, claim_id="videobert.mrv100.throughput.bs4")
    assert len(qps) == 1 and qps[0]["verdict"] == "REPRODUCED" and qps[0]["batch_size"] == 16
    assert qps[0]["note"].startswith("reading: batches/s at bs16")
    assert {r["verdict"] for r in rows_by(rows, metric="throughput")} == {"NO_CLAIM"}
    assert rows_by(rows, claim_id="videobert.mrv100.top1")[0]["verdict"] == "REPRODUCED"  # -0.47 pt
