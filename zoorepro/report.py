"""Per-(model, target, scale) result tables: measurements joined with claims, with verdicts.

A table is written with two files beside it: `<table>.provenance.json` (commit, packages, host,
toolchain versions, sha256 of the raw outputs every row was computed from, and at mini scale the
planted claims the table was judged against) and `<table>.metrics.json` (the reproduced numbers,
for `dvc metrics`, nested by model, target and batch size).
"""
from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from . import lineage, provenance
from .claims import Claim, load_planted
from .errors import ZooreproError
from .fsutil import atomic_write_text, sha256sum
from .measurements import Measurement, read_measurements
from .flops import load_registry
from .verdicts import NO_CLAIM, NOT_COMPARABLE, NOT_RUN, RunContext, comparability, judge, plausibility

COLUMNS = ("model", "target", "scale", "batch_size", "precision", "metric", "kind", "unit", "reproduced",
           "reported", "claim_id", "claim_target", "source", "tolerance", "verdict", "note", "raw_sha256")


def load_measurements(paths: list[str | Path]) -> list[Measurement]:
    """Every record of the given measurement files (each record names its own raw files)."""
    for path in paths:
        if "=" in str(path) and not Path(path).exists():
            raise ZooreproError(f"{path}: measurement files are named alone (FILE.json); each record names its "
                                "own raw files (`raw`), so the old FILE.json=RAW1,RAW2 form is gone")
    return [m for path in paths for m in read_measurements(Path(path))]


def _matches(claim: Claim, m: Measurement) -> bool:
    """Same metric; for throughput also the same batch size (accuracy does not depend on it).
    The claim's target is not part of the join: verdicts.comparability says when it matters."""
    if claim.reading is not None:
        return (m.metric, m.batch_size) == (claim.reading.metric, claim.reading.batch_size)
    if claim.metric != m.metric or claim.kind != m.kind:
        return False
    return claim.kind != "throughput" or claim.batch_size == m.batch_size


def _fmt(x: float) -> str:
    return f"{x:.6g}"


@dataclass
class Table:
    ctx: RunContext
    rows: list[dict] = field(default_factory=list)

    @classmethod
    def build(cls, ctx: RunContext, measurements: list[Measurement], claims: list[Claim], tolerances: dict,
              raw_digests: dict[str, str]) -> "Table":
        """One row per (measurement, matching claim); NO_CLAIM for a measurement no claim speaks
        of; NOT_RUN for a claim of this model that no measurement answers, except a document's claim
        in a mini table, which no measurement could be compared with there: NOT_COMPARABLE, with the
        reason and that it was not measured either (a planted claim with no measurement stays NOT_RUN:
        the chain lost a metric)."""
        table = cls(ctx)
        model_claims = [c for c in claims if c.model == ctx.model]
        registry = load_registry()  # FLOPs a sample, for every throughput claim's implied % of peak
        answered = set()
        for m in measurements:
            raw_sha = _combine([raw_digests[p] for p in m.raw])
            matching = [c for c in model_claims if _matches(c, m)]
            for c in matching:
                answered.add(c.id)
                verdict, tol, note = judge(c, m.value, ctx, tolerances)
                verdict, implied = plausibility(c, verdict, registry)
                if c.reading is not None:
                    note = f"reading: {m.unit} at bs{m.batch_size} ({c.reading.why}); {note}"
                table.rows.append(table._row(m, c, verdict, tol, "; ".join(x for x in (note, implied, m.note) if x),
                                             raw_sha))
            if not matching:
                table.rows.append(table._row(m, None, NO_CLAIM, "", m.note, raw_sha))
        for c in model_claims:
            if c.id not in answered:
                # a mini table compares no document number; a shape table no accuracy (NOT_RUN, as
                # the accuracy a random-weight model would give means nothing), throughput only on
                # the claimed chip
                why = comparability(c, ctx) if ctx.scale == "mini" and not c.planted else None
                missing = "no measurement of this claim in this run"
                if ctx.scale == "shape":
                    why = comparability(c, ctx) if c.kind == "throughput" else None
                    if c.kind != "throughput":
                        missing = "shape scale (real sizes, random weights): no accuracy is measured"
                verdict, implied = plausibility(c, NOT_COMPARABLE if why else NOT_RUN, registry)
                note = "; ".join(x for x in (why, missing, implied) if x)
                table.rows.append(table._row(None, c, verdict, "", note, ""))
        return table

    def _row(self, m: Measurement | None, c: Claim | None, verdict: str, tol: str, note: str, raw_sha: str) -> dict:
        bs = m.batch_size if m else c.batch_size
        return {"model": self.ctx.model, "target": self.ctx.target, "scale": self.ctx.scale,
                "batch_size": "" if bs is None else bs,
                "precision": (m.precision if m else "") or (c.precision if c else ""),
                "metric": m.metric if m else c.metric, "kind": m.kind if m else c.kind,
                "unit": m.unit if m else c.unit, "reproduced": _fmt(m.value) if m else "",
                "reported": _fmt(c.value) if c else "", "claim_id": c.id if c else "",
                "claim_target": c.target if c else "", "source": f"{c.document} / {c.table}" if c else "",
                "tolerance": tol, "verdict": verdict, "note": note, "raw_sha256": raw_sha}

    def write(self, csv_path: Path, prov: dict) -> None:
        """The table, then its provenance (which records the table's own sha256, so the audit can
        tell a table edited or truncated after it was written), then its metrics."""
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        text = self.csv_text()
        prov = {**prov, "table": {"sha256": hashlib.sha256(text.encode()).hexdigest(), "rows": len(self.rows),
                                  "columns": list(COLUMNS)}}
        atomic_write_text(csv_path, text)
        atomic_write_text(csv_path.with_suffix(".provenance.json"), json.dumps(prov, indent=2, sort_keys=True) + "\n")
        atomic_write_text(csv_path.with_suffix(".metrics.json"), json.dumps(self.metrics(), indent=2) + "\n")

    def csv_text(self) -> str:
        import io
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        return buf.getvalue()

    def metrics(self) -> dict:
        """The reproduced values nested model -> target -> (`bsN` ->) metric, so `dvc metrics diff`
        lists keys like `<model>.cpu.bs16.throughput` and `<model>.cpu.<accuracy metric>` (one value per
        measurement; batch sizes in ascending order, the rest first)."""
        flat, by_bs = {}, {}
        for r in self.rows:
            if r["reproduced"] == "":
                continue
            if r["batch_size"] == "":
                flat[r["metric"]] = float(r["reproduced"])
            else:
                by_bs.setdefault(int(r["batch_size"]), {})[r["metric"]] = float(r["reproduced"])
        nested = {**dict(sorted(flat.items())), **{f"bs{bs}": dict(sorted(m.items())) for bs, m in sorted(by_bs.items())}}
        return {self.ctx.model: {self.ctx.target: nested}}


def _combine(digests: list[str]) -> str:
    if not digests:
        return ""
    return hashlib.sha256("\n".join(digests).encode()).hexdigest()[:16]


def read_table(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def planted_claims(ctx: RunContext, planted: Path | None) -> tuple[list[Claim], dict | None]:
    """The mini generator's planted claims for this table and their provenance record. Planted
    claims belong to mini tables of their own model only (scales never mix)."""
    if planted is None:
        return [], None
    if ctx.scale != "mini":
        raise ZooreproError(f"{planted}: planted claims judge mini tables only, not a {ctx.scale}-scale table")
    claims = load_planted(Path(planted))
    foreign = sorted({c.model for c in claims} - {ctx.model})
    if foreign:
        raise ZooreproError(f"{planted}: planted claims of {', '.join(foreign)}, not of {ctx.model}")
    # A planted value tied to one target's hardware (a prompt or precision only that target uses)
    # judges that target's tables only; `any` judges every target's.
    claims = [c for c in claims if c.target in ("any", ctx.hardware)]
    record = {"file": str(planted), "sha256": sha256sum(Path(planted)), "claims": [c.to_dict() for c in claims]}
    return claims, record


def check_lineage(measurements: list[Measurement]) -> None:
    """Refuse a table whose rows do not all descend from the artifacts now in place: a raw output
    gone or changed since it was measured, or an ancestor rebuilt or deleted since (a killed job,
    a parameter change half-applied). One error names every such row (zoorepro/lineage.py)."""
    walk, problems = lineage.Walk(), []
    for m in measurements:
        if not m.raw:
            continue
        found = lineage.verify(m.lineage, walk) if set(m.lineage) == set(m.raw) else [
            "its record carries no hashes of its raw outputs (written before lineage was recorded)"]
        bs = "" if m.batch_size is None else f" bs{m.batch_size}"
        problems += [f"{m.metric}{bs}: {p}" for p in found]
    if problems:
        raise ZooreproError("the rows do not descend from one consistent set of artifacts; rerun the same "
                            "snakemake command (what was built from a gone or rebuilt artifact is rebuilt):\n  "
                            + "\n  ".join(dict.fromkeys(problems)))


def make_table(ctx: RunContext, measurement_files: list[str], claims: list[Claim], tolerances: dict,
               out_csv: Path, toolchain: dict | None = None, planted: Path | None = None) -> Table:
    """Judge the measurements against the documents' claims and, at mini scale, the planted
    claims file `planted`; write the table, its provenance and its metrics."""
    mini_claims, planted_record = planted_claims(ctx, planted)
    measurements = load_measurements(measurement_files)
    check_lineage(measurements)
    raw_paths = sorted({p for m in measurements for p in m.raw})
    prov = provenance.collect([Path(p) for p in raw_paths])
    prov["run"] = {"model": ctx.model, "target": ctx.target, "hardware": ctx.hardware, "scale": ctx.scale,
                   "standin": ctx.standin, "toolchain": toolchain or {}}
    if planted_record is not None:
        prov["planted"] = planted_record
    digests = {p: prov["raw"][p]["sha256"] for p in raw_paths}
    table = Table.build(ctx, measurements, [*claims, *mini_claims], tolerances, digests)
    table.write(out_csv, prov)
    return table
