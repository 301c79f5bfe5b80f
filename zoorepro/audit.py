"""The audit: every claim of the registry against every table under results/.

Each claim gets one line: the comparable verdicts when a comparable run exists (full scale, real
tools, the claimed chip for throughput), else NOT_COMPARABLE when only such runs exist, else
NOT_RUN. The exit status is non-zero when any comparable number is out of tolerance.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .claims import Claim
from .fsutil import atomic_write_text
from .report import read_table
from .verdicts import BETTER, NO_CLAIM, NOT_COMPARABLE, NOT_RUN, OUT_OF_TOLERANCE, REPRODUCED

COMPARABLE = (REPRODUCED, BETTER, OUT_OF_TOLERANCE)


@dataclass
class ClaimStatus:
    claim: Claim
    rows: list[dict]

    @property
    def verdict(self) -> str:
        verdicts = {r["verdict"] for r in self.rows}
        for v in (OUT_OF_TOLERANCE, REPRODUCED, BETTER, NOT_COMPARABLE):
            if v in verdicts:
                return v
        return NOT_RUN

    @property
    def why(self) -> str:
        """The note of the first row behind the verdict (the gap to the claim, or why not comparable)."""
        return next((r["note"] for r in self.rows if r["verdict"] == self.verdict), "no table measured it")

    @property
    def evidence(self) -> str:
        shown = [r for r in self.rows if r["verdict"] == self.verdict and r["reproduced"]]
        return "; ".join(f"{r['reproduced']} ({r['_table']})" for r in shown[:3])


def table_paths(results: Path) -> list[Path]:
    """Full tables in results/, mini ones in results/mini/ (never anything else)."""
    return sorted(results.glob("*.csv")) + sorted((results / "mini").glob("*.csv"))


def collect(claims: list[Claim], results: Path) -> tuple[list[ClaimStatus], list[dict]]:
    rows = []
    for path in table_paths(results):
        for r in read_table(path):
            r["_table"] = path.relative_to(results.parent).as_posix() if results.parent in path.parents else str(path)
            rows.append(r)
    statuses = [ClaimStatus(c, [r for r in rows if r["claim_id"] == c.id]) for c in claims]
    return statuses, rows


def render_markdown(statuses: list[ClaimStatus], rows: list[dict]) -> str:
    counts = {}
    for s in statuses:
        counts[s.verdict] = counts.get(s.verdict, 0) + 1
    tables = sorted({r["_table"] for r in rows})
    lines = ["# zoorepro audit", "",
             f"{len(statuses)} claims; tables read: {', '.join(tables) or 'none'}.", "",
             "Summary: " + ", ".join(f"{v} {n}" for v, n in sorted(counts.items())), "",
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
    return [s for s in statuses if s.verdict == OUT_OF_TOLERANCE]


def run_audit(claims: list[Claim], results: Path, out_md: Path | None) -> tuple[str, int]:
    statuses, rows = collect(claims, results)
    text = render_markdown(statuses, rows)
    if out_md is not None:
        out_md.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out_md, text)
    return text, (1 if failures(statuses) else 0)
