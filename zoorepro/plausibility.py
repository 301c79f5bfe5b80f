"""Is a throughput claim physically possible? Its implied % of the claimed chip's peak.

implied % = claimed items/s x FLOPs an item (claims/flops.yaml, counted from the model's full-size
graph) / the chip's peak at the claim's precision (zoorepro/peaks.yaml; the chip's largest float
peak when the claim states none). A claim above 100 % is IMPLAUSIBLE as stated; the note says which
reading would make it possible: as batches/s of its batch size the number only implies more FLOPs
(that reading tells apart claims plausible as samples/s), a sample costs the same at any batch
size, so what is left is a per-card figure of a board with several chips (peaks.yaml `cards`). A claim of a model without a FLOPs count, or
on a chip without a listed peak, is not assessed (and says why).
"""
from __future__ import annotations

from dataclasses import dataclass

from .flops import load_registry
from .peaks import Peak, chip_peak


@dataclass(frozen=True)
class Implied:
    """What a throughput claim implies of its chip's peak, under the stated and the other reading."""

    percent: float                    # the number as stated: items (samples) a second
    as_batches_percent: float | None  # the number read as batches a second of its batch size
    flops_per_sample: float
    peak: Peak

    @property
    def implausible(self) -> bool:
        return self.percent > 100.0

    def text(self) -> str:
        """The note beside the claim: the implied %, its FLOPs and the peak's source, and what the
        other readings would imply; for an implausible claim, which reading would make it possible."""
        core = (f"implies {self.percent:.1f} % of {self.peak.chip}'s {self.peak.precision} peak "
                f"({self.flops_per_sample / 1e9:.2f} GFLOP a sample x the claimed rate over "
                f"{self.peak.flops / 1e12:.4g} TFLOP/s: {self.peak.source})")
        if self.as_batches_percent is not None and self.as_batches_percent != self.percent:
            core += f"; read as batches/s of its batch size it would be {self.as_batches_percent:.1f} %"
            if self.as_batches_percent > 100.0 >= self.percent:
                core += " (beyond the peak: the number can only be samples/s)"
        if not self.implausible:
            return core
        readings = [f"{name}: {self.percent / chips:.1f} % of its {chips} chips' peak"
                    for name, chips in self.peak.cards if self.percent / chips <= 100.0]
        fix = ("plausible only as a per-card figure of " + "; ".join(readings)) if readings else (
            f"no reading fits: batches/s only adds FLOPs, and a sample costs the same at any batch size; it "
            f"needs {self.percent / 100.0:.2f}x the peak (or the FLOPs/peak data is wrong)")
        return f"IMPLAUSIBLE: {core}; {fix}"


def implied(claim, registry: dict | None = None) -> Implied | None:
    """The implied % of peak of a throughput claim, or None when it cannot be assessed (see why_not)."""
    if claim.kind != "throughput":
        return None
    registry = load_registry() if registry is None else registry
    entry = registry.get(claim.model)
    peak = chip_peak(str(claim.target), claim.precision or "")
    if entry is None or peak is None:
        return None
    per_sample = float(entry["per_batch_size"].get(claim.batch_size, entry["flops_per_sample"])) \
        if claim.batch_size is not None else float(entry["flops_per_sample"])
    rate = float(claim.value)
    as_batches = peak.percent(rate * claim.batch_size * per_sample) if claim.batch_size else None
    return Implied(peak.percent(rate * per_sample), as_batches, per_sample, peak)


def why_not(claim, registry: dict | None = None) -> str | None:
    """Why a throughput claim gets no implied % of peak (None when it gets one or is not throughput)."""
    if claim.kind != "throughput":
        return None
    registry = load_registry() if registry is None else registry
    if claim.model not in registry:
        return f"no FLOPs count for {claim.model}'s graph (claims/flops.yaml): % of peak not assessed"
    if chip_peak(str(claim.target), claim.precision or "") is None:
        return f"no {claim.precision} peak listed for {claim.target} (zoorepro/peaks.yaml): % of peak not assessed"
    return None
