"""Verify a result table before the audit counts it: one check per concern, every check run.

A table is the CSV the table step wrote plus its `.provenance.json`. The audit trusts neither
blindly: the provenance records the sha256 of the table's bytes at write time, so an edit, a
truncation or a renamed column after the fact shows; the rows must have the table's columns,
known verdicts and numbers that parse; every row's scale, model and target must be the table's
own (its folder says the scale: results/ full, results/mini/ mini; its file name the model and
target); with `verify_raw` the raw outputs the rows cite are hashed again (those not present on
this machine, e.g. after a `dvc pull` of the tables alone, are reported, not failed).
"""
from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from .provenance import hash_path
from .report import COLUMNS
from .verdicts import ALL

NUMERIC = ("reproduced", "reported")


@dataclass
class TableCheck:
    """What verification found: `problems` make the table INVALID; `notes` do not."""

    path: Path
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    provenance: dict = field(default_factory=dict)
    label: str = ""  # how the audit names it (results/mini/<model>_<target>.csv)

    @property
    def valid(self) -> bool:
        return not self.problems


def expected_identity(path: Path, results: Path) -> dict[str, str]:
    """Scale from the folder, model and target from `<model>_<target>.csv` (a model name may hold
    underscores; a target never does)."""
    folder = path.parent.resolve()
    scale = next((s for s in ("mini", "shape") if folder == (results / s).resolve()), "full")
    model, _, target = path.stem.rpartition("_")
    return {"scale": scale, "model": model, "target": target}


def _read(check: TableCheck) -> bytes | None:
    try:
        data = check.path.read_bytes()
    except OSError as exc:
        check.problems.append(f"cannot read the table: {exc.strerror or exc}")
        return None
    prov_path = check.path.with_suffix(".provenance.json")
    try:
        prov = json.loads(prov_path.read_text())
    except FileNotFoundError:
        check.problems.append(f"no provenance ({prov_path.name} is missing)")
        return data
    except (OSError, json.JSONDecodeError) as exc:
        check.problems.append(f"provenance {prov_path.name} is unreadable: {exc}")
        return data
    if not isinstance(prov, dict) or not isinstance(prov.get("table"), dict) or not isinstance(prov.get("run"), dict):
        check.problems.append(f"provenance {prov_path.name} lacks the table's record or its run (written by an "
                              "older zoorepro, or edited: rebuild the table)")
        return data
    check.provenance = prov
    return data


def _check_hash(check: TableCheck, data: bytes) -> None:
    recorded = check.provenance["table"].get("sha256")
    if recorded is None:
        check.problems.append("provenance records no sha256 of the table (written by an older zoorepro: rebuild it)")
    elif hashlib.sha256(data).hexdigest() != recorded:
        check.problems.append("the table changed after it was written (its sha256 differs from the provenance's)")


def _check_rows(check: TableCheck, data: bytes, identity: dict[str, str]) -> None:
    if not data.strip():
        check.problems.append("empty file: no header and no rows")
        return
    try:
        reader = csv.DictReader(data.decode("utf-8").splitlines())
        header = tuple(reader.fieldnames or ())
        rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as exc:
        check.problems.append(f"not a readable CSV: {exc}")
        return
    if header != COLUMNS:
        missing = [c for c in COLUMNS if c not in header]
        extra = [c for c in header if c not in COLUMNS]
        check.problems.append(f"columns differ from the table format (missing: {', '.join(missing) or '-'}; "
                              f"unexpected: {', '.join(extra) or '-'})")
        return
    if not rows:
        check.problems.append("no rows")
    for i, row in enumerate(rows, start=2):  # line 1 is the header
        if None in row or any(v is None for v in row.values()):
            check.problems.append(f"line {i}: wrong number of fields")
            continue
        for key, want in identity.items():
            if row[key] != want:
                check.problems.append(f"line {i}: {key} {row[key]!r} in a {want!r} table")
        if row["verdict"] not in ALL:
            check.problems.append(f"line {i}: unknown verdict {row['verdict']!r}")
        for key in NUMERIC:
            try:
                if row[key]:
                    float(row[key])
            except ValueError:
                check.problems.append(f"line {i}: {key} {row[key]!r} is not a number")
    recorded = (check.provenance.get("table") or {}).get("rows") if check.provenance else None
    if recorded is not None and recorded != len(rows):
        check.problems.append(f"{len(rows)} rows, provenance recorded {recorded}")
    check.rows = rows


def _check_provenance_run(check: TableCheck, identity: dict[str, str]) -> None:
    run = check.provenance.get("run") or {}
    for key, want in identity.items():
        if run.get(key) != want:
            check.problems.append(f"provenance says {key} {run.get(key)!r}, the table's place says {want!r}")
    planted = check.provenance.get("planted")
    if identity["scale"] != "mini" and planted:
        check.problems.append(f"a {identity['scale']}-scale table judged against planted mini claims")
    if identity["scale"] == "mini":
        if not planted:
            check.problems.append("a mini table judged without its model's planted claims (table --planted)")
        else:
            ids = {r["claim_id"] for r in check.rows}
            missing = [c["id"] for c in planted.get("claims", []) if c.get("id") not in ids]
            if missing:
                check.problems.append(f"planted claims with no row: {', '.join(missing)}")


def _check_raw(check: TableCheck, root: Path) -> None:
    for name, record in sorted((check.provenance.get("raw") or {}).items()):
        path = root / name
        if not path.exists():
            check.notes.append(f"raw output {name} not present to verify")
            continue
        if hash_path(path)["sha256"] != record.get("sha256"):
            check.problems.append(f"raw output {name} differs from the sha256 the table was computed from")


def verify_table(path: Path, results: Path, verify_raw: bool = False) -> TableCheck:
    """Every check on one table; raw outputs re-hashed only with `verify_raw` (they may be GBs)."""
    check = TableCheck(Path(path))
    data = _read(check)
    if data is None:
        return check
    identity = expected_identity(check.path, results)
    _check_rows(check, data, identity)
    if check.provenance:  # read, and has the table's record and run (else _read said why)
        _check_hash(check, data)
        _check_provenance_run(check, identity)
        if verify_raw:
            _check_raw(check, results.resolve().parent)
    return check


# What two runs of the same code on the same data must agree on (tests/test_slurm.py: a SLURM run
# against a local one): every row's identity and claim, and the measured value and verdict of the
# rows whose value does not depend on timing (accuracy, output parity, training loss). Throughput
# and latency values, their verdicts and notes, and raw_sha256 (raw records carry timings) differ.
IDENTITY_COLUMNS = ("model", "target", "scale", "batch_size", "precision", "metric", "kind", "unit",
                    "reported", "claim_id", "claim_target", "source", "tolerance")
DETERMINISTIC_KINDS = ("accuracy", "parity", "training")


def deterministic_rows(path: Path) -> list[tuple]:
    """The table's rows reduced to what must not change between runs (see above), sorted."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return sorted(tuple(row[c] for c in IDENTITY_COLUMNS)
                  + ((row["reproduced"], row["verdict"]) if row["kind"] in DETERMINISTIC_KINDS else ())
                  for row in rows)
