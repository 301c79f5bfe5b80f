"""The audit: every claim against every table under results/.

Claims are the documents' (claims/claims.yaml) and, for mini tables, the planted claims each table
was judged against (recorded in its provenance by the table step, zoorepro/planted.py). Each claim
gets one line: the comparable verdicts when a comparable run exists (documents: full scale, real
tools, the claimed chip for throughput; planted: any mini table of the model), else NOT_COMPARABLE
when only such runs exist, else NOT_RUN. The exit status is non-zero when any comparable number is
out of tolerance, planted claims included: a planted claim out of tolerance means the chain
computed something else than its own model and data say it must.

Before it counts a table the audit verifies it (zoorepro/tablecheck.py: its sha256 against the
provenance, its columns, verdicts and numbers, every row's scale/model/target against the table's
folder and name; with --verify-raw the raw outputs re-hashed). A table that fails is INVALID: it
is listed with the reason, its rows are not counted, its model's claims show INVALID instead of
turning silently into NOT_RUN, and the exit status is non-zero.

Before the claim lines, a summary per table: planted claims REPRODUCED out of how many, and the
documents' claims NOT_COMPARABLE / NOT_RUN with their reasons.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .claims import Claim
from .errors import ZooreproError
from .fsutil import atomic_write_text
from .tablecheck import TableCheck, expected_identity, verify_table
from .verdicts import BETTER, NO_CLAIM, NOT_COMPARABLE, NOT_RUN, OUT_OF_TOLERANCE, REPRODUCED, reasons_in

COMPARABLE = (REPRODUCED, BETTER, OUT_OF_TOLERANCE)
INVALID = "INVALID"


@dataclass
class ClaimStatus:
    claim: Claim
    rows: list[dict]
    invalid: list[str] = field(default_factory=list)  # invalid tables of the claim's model

    @property
    def verdict(self) -> str:
        verdicts = {r["verdict"] for r in self.rows}
        if OUT_OF_TOLERANCE in verdicts:
            return OUT_OF_TOLERANCE
        if self.invalid:
            return INVALID
        for v in (REPRODUCED, BETTER, NOT_COMPARABLE):
            if v in verdicts:
                return v
        return NOT_RUN

    @property
    def why(self) -> str:
        """The note of the first row behind the verdict (the gap to the claim, or why not comparable)."""
        if self.verdict == INVALID:
            return "not counted: invalid table " + ", ".join(self.invalid)
        return next((r["note"] for r in self.rows if r["verdict"] == self.verdict), "no table measured it")

    @property
    def evidence(self) -> str:
        shown = [r for r in self.rows if r["verdict"] == self.verdict and r["reproduced"]]
        return "; ".join(f"{r['reproduced']} ({r['_table']})" for r in shown[:3])


@dataclass
class TableSummary:
    """One table: its planted claims' verdicts and its document claims' verdicts with reasons."""

    name: str
    planted: Counter
    documents: Counter
    reasons: dict[str, Counter]

    def lines(self) -> list[str]:
        n_planted = sum(self.planted.values())
        planted = (f"planted claims: {self.planted[REPRODUCED]}/{n_planted} REPRODUCED"
                   + "".join(f", {n} {v}" for v, n in sorted(self.planted.items()) if v != REPRODUCED)
                   if n_planted else "planted claims: none (full scale, or no planted claims given)")
        docs = ", ".join(f"{n} {v}" for v, n in sorted(self.documents.items())) or "none"
        out = [f"- {self.name}", f"  - {planted}", f"  - document claims: {docs}"]
        for verdict in (NOT_COMPARABLE, NOT_RUN):
            for reason, n in self.reasons.get(verdict, Counter()).most_common():
                out.append(f"    - {verdict} {n}: {reason}")
        return out


def table_paths(results: Path) -> list[Path]:
    """Full tables in results/, mini ones in results/mini/ (never anything else)."""
    return sorted(results.glob("*.csv")) + sorted((results / "mini").glob("*.csv"))


def _label(path: Path, results: Path) -> str:
    return path.relative_to(results.parent).as_posix() if results.parent in path.parents else str(path)


def planted_of(check: TableCheck) -> list[Claim]:
    """The planted claims a verified table was judged against (its provenance, by the table step)."""
    record = check.provenance.get("planted")
    return [Claim.from_dict(c) for c in record["claims"]] if record else []


def _merge_planted(found: dict[str, Claim], check: TableCheck) -> None:
    """Planted claims of all tables, once each; two tables judged against different planted values
    for one id (mini data regenerated between them) cannot both be right."""
    for claim in planted_of(check):
        known = found.setdefault(claim.id, claim)
        if known != claim:
            raise ZooreproError(f"{check.path}: planted claim {claim.id} = {claim.value:g}, another mini table was "
                                f"judged against {known.value:g}; rebuild the mini tables from one mini data set")


def collect(claims: list[Claim], results: Path, verify_raw: bool = False) -> tuple[list[ClaimStatus], list[dict],
                                                                                    list[TableCheck]]:
    """Verify every table, then join the valid ones' rows to the claims (documents' and planted)."""
    rows, planted, checks = [], {}, []
    for path in table_paths(results):
        check = verify_table(path, results, verify_raw)
        checks.append(check)
        if not check.valid:
            continue
        _merge_planted(planted, check)
        for r in check.rows:
            rows.append({**r, "_table": _label(path, results)})
    invalid_models = {}
    for check in checks:
        if not check.valid:
            model = expected_identity(check.path, results)["model"]
            invalid_models.setdefault(model, []).append(_label(check.path, results))
    every = [*claims, *planted.values()]
    statuses = [ClaimStatus(c, [r for r in rows if r["claim_id"] == c.id], invalid_models.get(c.model, []))
                for c in every]
    return statuses, rows, checks


def summaries(statuses: list[ClaimStatus], rows: list[dict]) -> list[TableSummary]:
    planted_ids = {s.claim.id for s in statuses if s.claim.planted}
    out = []
    for name in sorted({r["_table"] for r in rows}, key=lambda n: (n.count("/"), n)):
        table_rows = [r for r in rows if r["_table"] == name and r["claim_id"]]
        planted = Counter(r["verdict"] for r in table_rows if r["claim_id"] in planted_ids)
        documents = Counter(r["verdict"] for r in table_rows if r["claim_id"] not in planted_ids)
        reasons: dict[str, Counter] = {}
        for r in table_rows:
            if r["claim_id"] not in planted_ids and r["verdict"] in (NOT_COMPARABLE, NOT_RUN):
                for reason in (reasons_in(r["note"]) if r["verdict"] == NOT_COMPARABLE else [r["note"]]):
                    reasons.setdefault(r["verdict"], Counter())[reason] += 1
        out.append(TableSummary(name, planted, documents, reasons))
    return out


def render_summary(statuses: list[ClaimStatus], rows: list[dict], checks: list[TableCheck]) -> str:
    """One screen: per table, planted REPRODUCED / total and the documents' verdicts with reasons;
    invalid tables with their reasons; then what is out of tolerance, by claim id."""
    counts = Counter(s.verdict for s in statuses)
    lines = ["Per table:"]
    for summary in summaries(statuses, rows):
        lines += summary.lines()
    for check in checks:
        if not check.valid:
            lines.append(f"- {check.path}: INVALID (not counted)")
            lines += [f"    - {p}" for p in check.problems]
    if not checks:
        lines.append("- no tables under the results folder")
    notes = [n for c in checks for n in c.notes]
    if notes:
        lines.append(f"Not verified: {len(notes)} raw output(s) not present (" + notes[0] + (", ..." if len(notes) > 1 else "") + ")")
    lines += ["", "Claims: " + ", ".join(f"{v} {n}" for v, n in sorted(counts.items()))]
    bad = failures(statuses)
    if bad:
        lines.append("OUT_OF_TOLERANCE: " + ", ".join(f"{s.claim.id} ({s.evidence})" for s in bad))
    return "\n".join(lines) + "\n"


def render_markdown(statuses: list[ClaimStatus], rows: list[dict], checks: list[TableCheck]) -> str:
    tables = sorted({r["_table"] for r in rows})
    lines = ["# zoorepro audit", "",
             f"{len(statuses)} claims; tables counted: {', '.join(tables) or 'none'}.", "",
             render_summary(statuses, rows, checks).rstrip("\n"), "",
             "| claim | document | target | bs | metric | reported | reproduced (table) | verdict | note |",
             "|---|---|---|---|---|---|---|---|---|"]
    for s in statuses:
        c = s.claim
        lines.append(f"| {c.id} | {c.document} | {c.target} | {'' if c.batch_size is None else c.batch_size} | "
                     f"{c.metric} | {c.value:g} {c.unit} | {s.evidence} | {s.verdict} | {s.why} |")
    extra = [r for r in rows if r["verdict"] == NO_CLAIM]
    if extra:
        lines += ["", f"Measurements with no claim (parity, latency, other readings): {len(extra)} rows."]
    return "\n".join(lines) + "\n"


def failures(statuses: list[ClaimStatus]) -> list[ClaimStatus]:
    """Claims out of tolerance, and planted claims not REPRODUCED (a planted claim exists only
    because a mini table was judged against it; unmeasured, it means the chain lost a metric)."""
    return [s for s in statuses
            if s.verdict == OUT_OF_TOLERANCE or (s.claim.planted and s.verdict not in (REPRODUCED, INVALID))]


@dataclass
class AuditResult:
    statuses: list[ClaimStatus]
    rows: list[dict]
    checks: list[TableCheck]

    @property
    def markdown(self) -> str:
        return render_markdown(self.statuses, self.rows, self.checks)

    @property
    def summary(self) -> str:
        return render_summary(self.statuses, self.rows, self.checks)

    @property
    def failed(self) -> list[str]:
        """What makes the audit fail: claims out of tolerance and invalid tables."""
        return ([s.claim.id for s in failures(self.statuses)]
                + [f"{c.path} (INVALID: {c.problems[0]})" for c in self.checks if not c.valid])


def audit(claims: list[Claim], results: Path, out_md: Path | None, verify_raw: bool = False) -> AuditResult:
    """Verify and judge everything under `results`; write the markdown report to `out_md` when given."""
    result = AuditResult(*collect(claims, results, verify_raw))
    if out_md is not None:
        out_md.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out_md, result.markdown)
    return result


def run_audit(claims: list[Claim], results: Path, out_md: Path | None) -> tuple[str, int]:
    """(the markdown report, exit status: 1 when a comparable number is out of tolerance)."""
    result = audit(claims, results, out_md)
    return result.markdown, (1 if result.failed else 0)
