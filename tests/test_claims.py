"""Tests for the claims registry: its numbers match the source documents, and bad files are refused.

The seed documents are parsed here (markdown tables and the "name: value" accuracy cells) so that
a number mistyped in claims/claims.yaml fails a test instead of silently shifting a verdict.
"""
from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from zoorepro.planted import slug as planted_slug
import yaml

from zoorepro.claims import (
    DEFAULT_CLAIMS_PATH,
    SCHEMA_PATH,
    Claim,
    ClaimsError,
    claims_for,
    format_table,
    load_claims,
    load_registry,
    main_claims,
)
from zoorepro.errors import ZooreproError

REPO_ROOT = Path(__file__).resolve().parent.parent
VILBERT_DOC = "002_96a57c031fd5d3aa.txt"
VIDEOBERT_DOC = "000_94813fe2aa136b00.txt"
ACTBERT_DOC = "004_1d93f0d998946b96.txt"
REQUIRED_JSON_KEYS = {"document", "model", "target", "batch_size", "precision", "metric", "value",
                      "unit"}


def _seeds_dir() -> Path | None:
    """Where the source documents live: $ZOOREPRO_SEEDS_DIR, ./shared/seeds, or ../shared/seeds."""
    env = os.environ.get("ZOOREPRO_SEEDS_DIR")
    candidates = [Path(env)] if env else []
    candidates += [REPO_ROOT / "shared" / "seeds", REPO_ROOT.parent / "shared" / "seeds"]
    for cand in candidates:
        if (cand / VILBERT_DOC).is_file():
            return cand
    return None


SEEDS = _seeds_dir()
needs_seeds = pytest.mark.skipif(SEEDS is None, reason="source documents (shared/seeds) not found")


def _seed_text(name: str) -> str:
    assert SEEDS is not None
    return (SEEDS / name).read_text(encoding="utf-8")


def _markdown_tables(text: str) -> list[list[dict[str, str]]]:
    """Every pipe table in `text` as a list of {header: cell} rows (separator rows dropped)."""
    tables: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in text.splitlines() + [""]:
        stripped = line.strip()
        if stripped.startswith("|") and stripped.endswith("|"):
            cells = [c.strip() for c in stripped[1:-1].split("|")]
            if not all(re.fullmatch(r":?-+:?", c) for c in cells):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    return [[dict(zip(t[0], row)) for row in t[1:]] for t in tables if len(t) > 1]


def _table_with(text: str, header: str) -> list[dict[str, str]]:
    """The one table whose header row has a column named `header`."""
    found = [t for t in _markdown_tables(text) if header in t[0]]
    assert len(found) == 1, f"expected one table with column {header!r}, found {len(found)}"
    return found[0]


def _registry_data() -> dict[str, Any]:
    return yaml.safe_load(DEFAULT_CLAIMS_PATH.read_text(encoding="utf-8"))


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "claims.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _claim(data: dict[str, Any], claim_id: str) -> dict[str, Any]:
    return next(c for c in data["claims"] if c["id"] == claim_id)


# ----------------------------------------------------------------------------- the real registry


MODELS = ("vilbert", "videobert", "actbert", "llava_video", "clipbert")


def test_registry_has_36_claims_with_unique_ids() -> None:
    claims = load_claims()
    # 27 numbers + the five checkpoints' implicit NPU-GPU gap + anetqa-code's four ClipBERT accuracies
    assert len(claims) == 36
    ids = [c.id for c in claims]
    assert len(set(ids)) == len(ids)
    assert {c.model for c in claims} == set(MODELS)
    assert [len(claims_for(claims, m)) for m in MODELS] == [20, 2, 5, 5, 4]


def test_default_path_does_not_depend_on_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert len(load_claims()) == 36


def test_schema_is_valid_draft_2020_12() -> None:
    schema = yaml.safe_load(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)


def test_ids_follow_the_naming_convention() -> None:
    slug = {"R@1": "r_at_1", "R@5": "r_at_5", "R@10": "r_at_10", "MedianR": "median_r",
            "MeanR": "mean_r"}
    for c in load_claims():
        expected = f"{c.model}.{c.target}.{slug.get(c.metric, planted_slug(c.metric))}"
        if c.kind == "throughput":
            expected += f".bs{c.batch_size}"
        assert c.id == expected


def test_claims_are_frozen_and_hashable() -> None:
    claim = load_claims()[0]
    with pytest.raises(AttributeError):
        claim.value = 0  # type: ignore[misc]
    assert len({claim, claim}) == 1


def test_lower_is_better_only_for_ranks() -> None:
    lower = {c.id for c in load_claims() if not c.higher_is_better}
    gaps = {c.id for c in load_claims() if c.metric.endswith("|NPU-GPU| accuracy gap")}
    assert len(gaps) == 5  # LLaVA-NeXT-Video's implicit claim: an NPU-GPU gap of 0 per checkpoint
    assert lower == {"actbert.any.median_r", "actbert.any.mean_r"} | gaps


def test_upstream_claims_say_they_are_not_the_documents() -> None:
    """ClipBERT's document prints no number: its claims are the anetqa-code README's, marked so."""
    registry = load_registry()
    doc = next(d for d in registry.documents if d.model == "clipbert")
    assert doc.claims == "upstream" and doc.reason and "44.34" in doc.note
    claims = claims_for(registry.claims, "clipbert")
    assert {c.metric: c.value for c in claims} == {"accuracy": 44.34, "test-tiny accuracy": 43.90,
                                                   "test-dev accuracy": 44.00, "test accuracy": 43.91}
    for c in claims:
        assert "not in the document" in c.table and any("not by the document" in x for x in c.caveats)
        assert c.unit == "percent" and c.target == "any" and c.dataset.startswith("ANetQA ")


def test_a_document_saying_none_or_upstream_is_held_to_it(tmp_path: Path) -> None:
    data = _registry_data()
    next(d for d in data["documents"] if d["model"] == "clipbert")["claims"] = "none"
    with pytest.raises(ClaimsError, match=r"says `claims: none` but has 4"):
        load_claims(_write(tmp_path, data))
    data = _registry_data()
    data["claims"] = [c for c in data["claims"] if c["model"] != "clipbert"]
    with pytest.raises(ClaimsError, match=r"says `claims: upstream` but has none"):
        load_claims(_write(tmp_path, data))
    data = _registry_data()
    del next(d for d in data["documents"] if d["model"] == "clipbert")["reason"]
    with pytest.raises(ClaimsError, match=r"'reason' is a required property"):
        load_claims(_write(tmp_path, data))
    data = _registry_data()
    next(d for d in data["documents"] if d["model"] == "actbert")["reason"] = "a listed document explains nothing"
    with pytest.raises(ClaimsError, match=r"should not be valid under"):
        load_claims(_write(tmp_path, data))


@needs_seeds
def test_every_seed_document_is_listed() -> None:
    assert SEEDS is not None
    seed_files = {p.name for p in SEEDS.glob("*.txt")}
    listed = {d.file for d in load_registry().documents}
    assert seed_files == listed
    assert len(listed) == 5


@needs_seeds
def test_table_headings_appear_verbatim_in_their_document() -> None:
    upstream = {d.file for d in load_registry().documents if d.claims == "upstream"}
    for c in load_claims():
        if c.document in upstream:   # its numbers are not the document's: the heading says where they are
            assert "not in the document" in c.table
            continue
        text = _seed_text(c.document)
        for part in c.table.split(" / "):
            assert part in text, f"{c.id}: heading {part!r} not in {c.document}"


@needs_seeds
def test_vilbert_fps_match_the_document_table() -> None:
    rows = _table_with(_seed_text(VILBERT_DOC), "芯片型号")
    printed: dict[tuple[str, int], str] = {}
    for row in rows:
        m = re.fullmatch(r"(\d+(?:\.\d+)?) fps", row["性能"])
        assert m, row
        printed[(row["芯片型号"], int(row["Batch Size"]))] = m.group(1)
    assert len(printed) == 12
    claimed = {
        (c.target, c.batch_size): str(c.value)
        for c in load_claims()
        if c.model == "vilbert" and c.kind == "throughput"
    }
    assert claimed == printed


@needs_seeds
def test_vilbert_accuracy_matches_the_document_table() -> None:
    (row,) = _table_with(_seed_text(VILBERT_DOC), "官网精度")
    column_target = {"官网精度": "reference", "310P离线推理精度": "310P3"}
    claimed = {
        (c.target, c.metric): str(c.value)
        for c in load_claims()
        if c.model == "vilbert" and c.kind == "accuracy"
    }
    printed: dict[tuple[str, str], str] = {}
    for column, target in column_target.items():
        for name, number in re.findall(r"(\w+):\s*([0-9.]+)", row[column]):
            metric = "vqa_score" if name == "vqascore" else name
            printed[(target, metric)] = number
    assert len(printed) == 8
    assert claimed == printed


@needs_seeds
def test_videobert_matches_the_document_table() -> None:
    (row,) = _table_with(_seed_text(VIDEOBERT_DOC), "QPS")
    by_metric = {c.metric: c for c in claims_for(load_claims(), "videobert")}
    assert str(by_metric["throughput"].value) == row["QPS"]
    assert str(by_metric["top1"].value) == row["Top-1 ACC"]
    for c in by_metric.values():
        assert c.batch_size == int(row["BatchSize"])
        assert c.precision == row["Precision"].lower()
        assert c.target == "mrv100"


@needs_seeds
def test_actbert_matches_the_document_table() -> None:
    (row,) = _table_with(_seed_text(ACTBERT_DOC), "R@1")
    column_metric = {"R@1": "R@1", "R@5": "R@5", "R@10": "R@10", "Median R": "MedianR",
                     "Mean R": "MeanR"}
    printed = {metric: row[col] for col, metric in column_metric.items()}
    claimed = {c.metric: str(c.value) for c in claims_for(load_claims(), "actbert")}
    assert claimed == printed


# ------------------------------------------------------------------------------- refused files


def test_duplicate_id_is_refused_naming_the_id(tmp_path: Path) -> None:
    data = _registry_data()
    dup = copy.deepcopy(_claim(data, "vilbert.310P3.throughput.bs16"))
    dup["value"] = 999
    data["claims"].append(dup)
    expected = r"duplicate claim id 'vilbert\.310P3\.throughput\.bs16'"
    with pytest.raises(ZooreproError, match=expected):
        load_claims(_write(tmp_path, data))


def test_unknown_kind_is_refused_naming_key_and_id(tmp_path: Path) -> None:
    data = _registry_data()
    _claim(data, "actbert.any.r_at_5")["kind"] = "speed"
    with pytest.raises(ClaimsError) as info:
        load_claims(_write(tmp_path, data))
    message = str(info.value)
    assert "'actbert.any.r_at_5'" in message
    assert ".kind: 'speed' is not one of" in message


def test_missing_key_is_refused_naming_it(tmp_path: Path) -> None:
    data = _registry_data()
    del _claim(data, "videobert.mrv100.top1")["value"]
    with pytest.raises(ClaimsError, match=r"videobert\.mrv100\.top1.*'value' is a required"):
        load_claims(_write(tmp_path, data))


def test_unquoted_310_target_is_refused(tmp_path: Path) -> None:
    data = _registry_data()
    _claim(data, "vilbert.310.throughput.bs1")["target"] = 310  # what YAML makes of bare 310
    with pytest.raises(ClaimsError, match=r"\.target: 310 is not one of"):
        load_claims(_write(tmp_path, data))


@pytest.mark.parametrize(
    ("claim_id", "changes", "expected"),
    [
        ("vilbert.310P3.recall", {"value": 51.1}, r"\.value: 51\.1 is greater than"),
        ("actbert.any.mean_r", {"higher_is_better": True}, r"higher_is_better: False was expected"),
        ("vilbert.310.throughput.bs8", {"batch_size": None}, r"\.batch_size: None is not of type"),
        ("vilbert.310.throughput.bs8", {"unit": "percent"}, r"\.unit: 'percent' is not one of"),
        ("actbert.any.r_at_1", {"metric": "top1"}, r"\.metric: 'top1' is not one of"),
        ("vilbert.reference.fscore", {"extra": 1}, r"'extra' was unexpected"),
    ],
)
def test_inconsistent_fields_are_refused(
    tmp_path: Path, claim_id: str, changes: dict[str, Any], expected: str
) -> None:
    data = _registry_data()
    _claim(data, claim_id).update(changes)
    with pytest.raises(ClaimsError, match=expected) as info:
        load_claims(_write(tmp_path, data))
    assert repr(claim_id) in str(info.value)


def test_claim_for_unlisted_document_is_refused(tmp_path: Path) -> None:
    data = _registry_data()
    data["documents"] = [d for d in data["documents"] if d["file"] != ACTBERT_DOC]
    with pytest.raises(ClaimsError, match=r"claim 'actbert\.any\.r_at_1' names document"):
        load_claims(_write(tmp_path, data))


def test_claims_for_a_none_document_are_refused(tmp_path: Path) -> None:
    data = _registry_data()
    clipbert = next(d for d in data["documents"] if d["model"] == "clipbert")
    for c in data["claims"]:
        if c["document"] == VIDEOBERT_DOC:
            c["document"] = clipbert["file"]
    with pytest.raises(ClaimsError, match=r"has model 'videobert' but its document"):
        load_claims(_write(tmp_path, data))


def test_none_document_must_give_a_reason(tmp_path: Path) -> None:
    data = _registry_data()
    del next(d for d in data["documents"] if d["model"] == "clipbert")["reason"]
    with pytest.raises(ClaimsError, match=r"documents\[\d\]: 'reason' is a required property"):
        load_claims(_write(tmp_path, data))


def test_tolerance_override_loads_and_unknown_keys_are_refused(tmp_path: Path) -> None:
    data = _registry_data()
    _claim(data, "videobert.mrv100.top1")["tolerance"] = {"points": 0.5}
    (claim,) = [c for c in load_claims(_write(tmp_path, data)) if c.id == "videobert.mrv100.top1"]
    assert claim.tolerance is not None and claim.tolerance.points == 0.5
    assert claim.to_dict()["tolerance"] == {"points": 0.5}
    _claim(data, "videobert.mrv100.top1")["tolerance"] = {"abs": 0.5}
    with pytest.raises(ClaimsError, match=r"tolerance: Additional properties are not allowed"):
        load_claims(_write(tmp_path, data))


def test_broken_yaml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "claims.yaml"
    path.write_text("claims: [unclosed\n", encoding="utf-8")
    with pytest.raises(ClaimsError, match="not valid YAML"):
        load_claims(path)


# ---------------------------------------------------------------------------------------- CLI


def test_main_claims_json_has_required_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert main_claims(["--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert isinstance(out, list) and len(out) == 36
    for obj in out:
        assert REQUIRED_JSON_KEYS <= obj.keys()
        assert set(obj) == set(Claim.__dataclass_fields__)
    by_id = {o["id"]: o for o in out}
    assert by_id["vilbert.310.throughput.bs64"]["target"] == "310"
    assert by_id["vilbert.310.throughput.bs64"]["value"] == 236


def test_main_claims_json_filters_by_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main_claims(["--json", "--model", "actbert"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [o["metric"] for o in out] == ["R@1", "R@5", "R@10", "MedianR", "MeanR"]


def test_main_claims_text_table_is_aligned(capsys: pytest.CaptureFixture[str]) -> None:
    assert main_claims(["--model", "vilbert"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 + 20
    header = lines[0]
    value_col = header.index("value")
    unit_col = header.index("unit")
    row = next(line for line in lines if line.startswith("vilbert.310P3.throughput.bs16 "))
    assert row[value_col:unit_col].strip() == "488"
    assert row[unit_col:].split()[0] == "fps"


def test_format_table_shows_missing_batch_size_as_dash() -> None:
    (claim,) = [c for c in load_claims() if c.id == "actbert.any.median_r"]
    table = format_table([claim]).splitlines()
    assert table[1].split() == ["actbert.any.median_r", "any", "-", "unspecified", "MedianR",
                                "13.0", "rank", "lower"]


def test_main_claims_of_one_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main_claims(["--model", "clipbert"]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    assert [r.split()[0] for r in rows] == ["clipbert.any.accuracy", "clipbert.any.test_tiny_accuracy",
                                            "clipbert.any.test_dev_accuracy", "clipbert.any.test_accuracy"]


def test_main_claims_unknown_model_and_bad_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main_claims(["--model", "resnet"]) == 2
    assert "unknown model 'resnet'" in capsys.readouterr().err
    assert main_claims(["--claims", str(tmp_path / "missing.yaml")]) == 2
    assert "cannot read claims registry" in capsys.readouterr().err
