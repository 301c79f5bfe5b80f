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

What people see first (`render_summary`, the terminal's output and the top of the markdown): one
status line, the failures with their reasons (claims out of tolerance, planted claims not
reproduced, invalid tables), then per table the counts per verdict and why the documents' claims
are not comparable, then where the full report (results/audit.md) and the JSON are. The JSON
(`--format json`) holds the same as data, every claim included.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .claims import Claim
from .errors import ZooreproError
from .flops import load_registry
from .plausibility import Implied, implied
from .fsutil import atomic_write_text
from .tablecheck import TableCheck, expected_identity, verify_table
from .verdicts import (
    BETTER,
    IMPLAUSIBLE,
    NO_CLAIM,
    NOT_COMPARABLE,
    NOT_RUN,
    OUT_OF_TOLERANCE,
    REPRODUCED,
    reasons_in,
)

COMPARABLE = (REPRODUCED, BETTER, OUT_OF_TOLERANCE)
INVALID = "INVALID"


@dataclass
class ClaimStatus:
    claim: Claim
    rows: list[dict]
    invalid: list[str] = field(default_factory=list)  # invalid tables of the claim's model
    implied: Implied | None = None  # a throughput claim's implied % of its chip's peak

    @property
    def verdict(self) -> str:
        verdicts = {r["verdict"] for r in self.rows}
        if OUT_OF_TOLERANCE in verdicts:
            return OUT_OF_TOLERANCE
        if self.invalid:
            return INVALID
        for v in (REPRODUCED, BETTER):
            if v in verdicts:
                return v
        if self.implied is not None and self.implied.implausible:  # nothing comparable judged it
            return IMPLAUSIBLE
        return NOT_COMPARABLE if NOT_COMPARABLE in verdicts else NOT_RUN

    @property
    def why(self) -> str:
        """The note of the first row behind the verdict (the gap to the claim, or why not comparable)."""
        if self.verdict == INVALID:
            return "not counted: invalid table " + ", ".join(self.invalid)
        if self.verdict == IMPLAUSIBLE:
            return self.implied.text()
        return next((r["note"] for r in self.rows if r["verdict"] == self.verdict), "no table measured it")

    @property
    def percent_of_peak(self) -> str:
        return "" if self.implied is None else f"{self.implied.percent:.1f}"

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

    def lines(self, colour: bool = False) -> list[str]:
        n_planted = sum(self.planted.values())
        planted = (f"planted {self.planted[REPRODUCED]}/{n_planted} REPRODUCED"
                   + "".join(f", {paint(f'{n} {v}', v, colour)}" for v, n in sorted(self.planted.items())
                             if v != REPRODUCED)
                   if n_planted else "planted none (full or shape scale, or no planted claims given)")
        out = [f"- {self.name}: {planted}; documents {_counts(self.documents, colour) or 'none'}"]
        for verdict in (NOT_COMPARABLE, NOT_RUN):
            for reason, n in self.reasons.get(verdict, Counter()).most_common():
                out.append(f"    {paint(verdict, verdict, colour)} {n}: {reason}")
        return out

    def to_dict(self) -> dict:
        return {"table": self.name, "planted": dict(self.planted), "documents": dict(self.documents),
                "reasons": {v: dict(c) for v, c in self.reasons.items()}}


def table_paths(results: Path) -> list[Path]:
    """Full tables in results/, mini ones in results/mini/, shape ones in results/shape/ (never
    anything else)."""
    return sorted(results.glob("*.csv")) + sorted((results / "mini").glob("*.csv")) + sorted(
        (results / "shape").glob("*.csv"))


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
        check.label = _label(path, results)
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
            invalid_models.setdefault(model, []).append(check.label)
    every = [*claims, *planted.values()]
    registry = load_registry()
    statuses = [ClaimStatus(c, [r for r in rows if r["claim_id"] == c.id], invalid_models.get(c.model, []),
                            implied(c, registry)) for c in every]
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


# Terminal colours per verdict (ANSI SGR), used only when the output is a terminal.
COLOURS = {REPRODUCED: "32", BETTER: "32", OUT_OF_TOLERANCE: "1;31", INVALID: "1;31", IMPLAUSIBLE: "1;35",
           NOT_COMPARABLE: "33", NOT_RUN: "2", NO_CLAIM: "2"}


def paint(text: str, verdict: str, colour: bool) -> str:
    return f"\033[{COLOURS[verdict]}m{text}\033[0m" if colour and verdict in COLOURS else text


def _counts(counter: Counter, colour: bool) -> str:
    order = {v: i for i, v in enumerate((OUT_OF_TOLERANCE, INVALID, IMPLAUSIBLE, REPRODUCED, BETTER, NOT_COMPARABLE,
                                         NOT_RUN))}
    return ", ".join(paint(f"{n} {v}", v, colour) for v, n in sorted(counter.items(), key=lambda x: order.get(x[0], 9)))


def render_summary(statuses: list[ClaimStatus], rows: list[dict], checks: list[TableCheck], colour: bool = False,
                   report: str | None = None) -> str:
    """The first screen: one status line; what failed (claims out of tolerance, planted claims not
    reproduced, invalid tables), each with its reason; per table the counts per verdict and why
    the documents' claims are not comparable; then where the full report and the JSON are."""
    counts = Counter(s.verdict for s in statuses)
    bad, invalid = failures(statuses), [c for c in checks if not c.valid]
    status = (paint("FAILED", OUT_OF_TOLERANCE, colour) if bad or invalid else paint("OK", REPRODUCED, colour))
    lines = [f"zoorepro audit: {status} — {len(statuses)} claims ({_counts(counts, colour) or 'none'}), "
             f"{len(checks) - len(invalid)} table(s) counted, {len(invalid)} invalid"]
    if bad or invalid:
        lines += ["", "Failures:"]
        for s in bad:
            lines.append(f"- {paint(s.verdict, s.verdict, colour)} {s.claim.id}: reported {s.claim.value:g} "
                         f"{s.claim.unit}, reproduced {s.evidence or 'nothing'}; {s.why}")
        for check in invalid:
            lines.append(f"- {paint(INVALID, INVALID, colour)} {check.label or check.path} (not counted): "
                         + "; ".join(check.problems))
    odd = [s for s in statuses if s.verdict == IMPLAUSIBLE]
    if odd:
        lines += ["", "Implausible claims (more than the chip's peak compute):"]
        lines += [f"- {paint(IMPLAUSIBLE, IMPLAUSIBLE, colour)} {s.claim.id} ({s.claim.value:g} {s.claim.unit} at "
                  f"bs{s.claim.batch_size}): {s.why.removeprefix('IMPLAUSIBLE: ')}" for s in odd]
    lines += ["", "Per table:"]
    for summary in summaries(statuses, rows):
        lines += summary.lines(colour)
    if not checks:
        lines.append("- no tables under the results folder")
    notes = [n for c in checks for n in c.notes]
    if notes:
        lines.append(f"Not verified: {len(notes)} raw output(s) not present (" + notes[0] + (", ..." if len(notes) > 1 else "") + ")")
    lines.append("")
    if report:
        lines.append(f"Full report (every claim, one row each): {report}")
    lines.append("Machine-readable: python -m zoorepro audit --format json")
    return "\n".join(lines) + "\n"


def render_markdown(statuses: list[ClaimStatus], rows: list[dict], checks: list[TableCheck]) -> str:
    tables = sorted({r["_table"] for r in rows})
    lines = ["# zoorepro audit", "",
             f"{len(statuses)} claims; tables counted: {', '.join(tables) or 'none'}.", "", "```",
             render_summary(statuses, rows, checks).rstrip("\n"), "```", "",
             "| claim | document | target | bs | metric | reported | implied % of peak | reproduced (table) | verdict "
             "| note |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for s in statuses:
        c = s.claim
        lines.append(f"| {c.id} | {c.document} | {c.target} | {'' if c.batch_size is None else c.batch_size} | "
                     f"{c.metric} | {c.value:g} {c.unit} | {s.percent_of_peak} | {s.evidence} | {s.verdict} | "
                     f"{s.why} |")
    extra = [r for r in rows if r["verdict"] == NO_CLAIM]
    if extra:
        lines += ["", f"Measurements with no claim (parity, latency, other readings): {len(extra)} rows."]
    return "\n".join(lines) + "\n"


def render_json(statuses: list[ClaimStatus], rows: list[dict], checks: list[TableCheck]) -> dict:
    """Everything the text and markdown say, as data: the status, what failed, every table (valid
    or not, with its problems and per-verdict counts) and every claim with its verdict and evidence."""
    failed = failures(statuses)
    by_table = {s.name: s.to_dict() for s in summaries(statuses, rows)}
    return {
        "ok": not failed and all(c.valid for c in checks),
        "counts": dict(Counter(s.verdict for s in statuses)),
        "failed": [s.claim.id for s in failed],
        "tables": [{"table": c.label, "valid": c.valid, "problems": c.problems, "notes": c.notes,
                    **by_table.get(c.label, {})} for c in checks],
        "claims": [{**s.claim.to_dict(), "verdict": s.verdict, "why": s.why,
                    "implied_percent_of_peak": None if s.implied is None else s.implied.percent,
                    "evidence": [{"table": r["_table"], "reproduced": float(r["reproduced"]), "verdict": r["verdict"]}
                                 for r in s.rows if r["reproduced"] != ""]}
                   for s in statuses],
    }


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

    def terminal(self, colour: bool, report: str | None) -> str:
        """The summary as the terminal shows it: colours only when asked (a TTY), and where the
        full report is."""
        return render_summary(self.statuses, self.rows, self.checks, colour, report)

    @property
    def json(self) -> dict:
        return render_json(self.statuses, self.rows, self.checks)

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
