"""Verdicts: one small check per concern, every check evaluated, thresholds from params.yaml.

A document's number and a measured number are comparable only when the run is at full scale, on
real (not stand-in) tools, and — for throughput — on the chip the claim was measured on. Accuracy
is comparable across hardware. At shape scale (real sizes, random weights) only throughput is
measured, comparable as at full scale. A planted claim (scale mini, zoorepro/planted.py) is the mini
generator's expected value for its own generated data: comparable with mini runs only, on any
target, stand-in tools included (it checks the chain, not a chip), with the tight
`tolerances.planted_points`.
"""
from __future__ import annotations

from dataclasses import dataclass

REPRODUCED = "REPRODUCED"
BETTER = "BETTER"
OUT_OF_TOLERANCE = "OUT_OF_TOLERANCE"
NOT_COMPARABLE = "NOT_COMPARABLE"
NO_CLAIM = "NO_CLAIM"
NOT_RUN = "NOT_RUN"
# A throughput claim that would need more than its chip's peak compute (zoorepro/plausibility.py):
# a finding about the document where no comparable run judged it (a comparable verdict stands).
IMPLAUSIBLE = "IMPLAUSIBLE"
ALL = (REPRODUCED, BETTER, OUT_OF_TOLERANCE, NOT_COMPARABLE, NO_CLAIM, NOT_RUN, IMPLAUSIBLE)


@dataclass(frozen=True)
class RunContext:
    """What a table's numbers were measured under."""

    model: str
    target: str
    hardware: str
    scale: str
    standin: bool = False


def tolerance_for(claim, tolerances: dict) -> tuple[float, str]:
    """(tolerance, human text). Accuracy: absolute points of the claim's scale (1 point = 0.01 of a
    fraction); throughput: relative. A claim may carry its own override."""
    override = claim.tolerance
    if claim.planted:
        tol = tolerances["planted_points"]
        return tol, f"±{tol:g} pt (planted)"
    if claim.kind == "throughput":
        tol = override.relative if override and override.relative is not None else tolerances["throughput_relative"]
        return tol, f"±{tol:.0%} rel"
    tol = override.points if override and override.points is not None else tolerances["accuracy_points"]
    return tol, f"±{tol:g} pt"


def _points(claim, value: float) -> float:
    return value * 100 if claim.unit == "fraction" else value


# How every reason `comparability` gives begins: the audit picks them out of a row's note.
REASON_PREFIXES = ("planted mini claim", "mini scale", "shape scale", "stand-in vendor tools", "throughput claimed on")


def plausibility(claim, verdict: str, registry: dict | None = None) -> tuple[str, str]:
    """(verdict, note) for a claim row once its implied % of peak is known: the note says what the
    claim implies of its chip's peak (or why that is not assessed); a claim above the peak is
    IMPLAUSIBLE where nothing comparable judged it (NOT_COMPARABLE, NOT_RUN): a comparable run's
    verdict stands (an OUT_OF_TOLERANCE must still fail the audit; a REPRODUCED one says the FLOPs
    or peak data is wrong), with the implied % in its note."""
    from .plausibility import implied, why_not

    found = implied(claim, registry)
    if found is None:
        return verdict, why_not(claim, registry) or ""
    if found.implausible and verdict in (NOT_COMPARABLE, NOT_RUN):
        return IMPLAUSIBLE, found.text()
    return verdict, found.text()


def reasons_in(note: str) -> list[str]:
    """The comparability reasons in a table row's note (the measurement's own note follows them)."""
    return [part for part in note.split("; ") if part.startswith(REASON_PREFIXES)]


def comparability(claim, ctx: RunContext) -> str | None:
    """Why this measurement cannot be compared with the claim, or None when it can. Every
    concern is checked and all reasons are reported together."""
    if claim.planted:
        return None if ctx.scale == "mini" else f"planted mini claim, measured at {ctx.scale} scale"
    reasons = []
    if ctx.scale == "mini":
        reasons.append("mini scale (random weights, generated data): the planted claims check the chain, "
                       "not this document's number")
    if ctx.scale == "shape" and claim.kind != "throughput":
        reasons.append("shape scale (real sizes, random weights): throughput only, no accuracy")
    if ctx.standin:
        reasons.append(f"stand-in vendor tools (tests): not a real {ctx.hardware} result")
    if claim.kind == "throughput" and claim.target != ctx.hardware:
        reasons.append(f"throughput claimed on {claim.target}, measured on {ctx.hardware}")
    return "; ".join(reasons) or None


def judge(claim, measured: float, ctx: RunContext, tolerances: dict) -> tuple[str, str, str]:
    """(verdict, tolerance text, note) for one measured value against one claim."""
    tol, tol_text = tolerance_for(claim, tolerances)
    why_not = comparability(claim, ctx)
    if why_not:
        return NOT_COMPARABLE, tol_text, why_not
    if claim.kind == "throughput":
        delta = (measured - claim.value) / claim.value
        delta_text = f"{delta:+.1%} vs claim"
        within = abs(delta) <= tol
    else:
        delta = _points(claim, measured) - _points(claim, claim.value)
        delta_text = f"{delta:+.2f} pt vs claim"
        within = abs(delta) <= tol
    if within:
        return REPRODUCED, tol_text, delta_text
    if claim.planted:  # an exact expectation: a chain that scores higher than planted is as wrong
        return OUT_OF_TOLERANCE, tol_text, delta_text
    better = delta > 0 if claim.higher_is_better else delta < 0
    return (BETTER if better else OUT_OF_TOLERANCE), tol_text, delta_text
