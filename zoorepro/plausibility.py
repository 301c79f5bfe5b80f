"""Is a throughput claim physically possible? Its implied % of the claimed chip's peak.

implied % = claimed items/s x FLOPs an item (claims/flops.yaml, counted from the model's full-size
graph) / the chip's peak at the claim's precision (zoorepro/peaks.yaml; the chip's largest float
peak when the claim states none). A claim above 100 % is IMPLAUSIBLE as stated; the note says which
reading would make it possible: the other of samples/s and batches/s of its batch size (a claim the
registry reads as batches/s, `reading: throughput_batches`, is assessed that way), or a per-card
figure of a board with several chips (peaks.yaml `cards`); a sample costs the same at any batch size. A claim of a model without a FLOPs count, or
on a chip without a listed peak, is not assessed (and says why).

A generative model's entry counts per unit instead (`checkpoints`: per checkpoint its FLOPs a
prefill and a generated token; `metrics`: which count a claimed metric's unit is, e.g.
"generated tokens/s" -> flops_per_generated_token; `same_sizes`: checkpoints sharing another's
sizes): a tokens/s claim is read with the FLOPs of a token, a questions/s claim with those of a whole
question (unit_flops).
"""
from __future__ import annotations

from dataclasses import dataclass

from .flops import load_registry
from .peaks import Peak, chip_peak


@dataclass(frozen=True)
class Implied:
    """What a throughput claim implies of its chip's peak, read as the registry reads it (samples/s,
    or the claim's registered `reading`), and under the other reading."""

    percent: float                 # the number as the registry reads it
    reading: str                   # that reading, e.g. "samples/s" or "batches/s of bs16"
    other_percent: float | None    # under the other reading (None when both are the same)
    other_reading: str
    flops_per_sample: float
    peak: Peak
    unit: str = "sample"           # what flops_per_sample is the cost of (a sample, a generated token ...)
    # models with work done once a batch (registry `flops_per_batch`): the least batch size at which
    # the claimed samples/s would fit the peak (None: none would, or the cost does not depend on it)
    batch_dependent: bool = False
    plausible_from_bs: int | None = None

    @property
    def implausible(self) -> bool:
        return self.percent > 100.0

    def text(self) -> str:
        """The note beside the claim: the implied %, its FLOPs and the peak's source, and what the
        other reading would imply; for an implausible claim, which reading would make it possible."""
        core = (f"implies {self.percent:.1f} % of {self.peak.chip}'s {self.peak.precision} peak read as "
                f"{self.reading} ({self.flops_per_sample / 1e9:.2f} GFLOP a {self.unit} x the claimed rate over "
                f"{self.peak.flops / 1e12:.4g} TFLOP/s: {self.peak.source})")
        if self.other_percent is not None:
            core += f"; read as {self.other_reading} it would be {self.other_percent:.1f} %"
            if self.other_percent > 100.0 >= self.percent:
                core += f" (beyond the peak: the number cannot be {self.other_reading})"
        if not self.implausible:
            return core
        fits = []
        if self.other_percent is not None and self.other_percent <= 100.0:
            fits.append(f"as {self.other_reading} ({self.other_percent:.1f} %)")
        if self.plausible_from_bs is not None:
            fits.append(f"as samples/s at a batch size of {self.plausible_from_bs} or more (the once-a-batch work "
                        "shared by more samples)")
        fits += [f"as a per-card figure of {name} ({self.percent / chips:.1f} % of its {chips} chips' peak)"
                 for name, chips in self.peak.cards if self.percent / chips <= 100.0]
        why = ("no batch size helps: a sample's own share alone exceeds the peak" if self.batch_dependent
               else "a sample costs the same at any batch size")
        fix = ("plausible only " + "; or ".join(fits)) if fits else (
            f"no reading fits: {why}; it needs {self.percent / 100.0:.2f}x the peak (or the FLOPs/peak data is wrong)")
        return f"IMPLAUSIBLE: {core}; {fix}"


def unit_flops(entry: dict, metric: str) -> tuple[float, str] | None:
    """(FLOPs, unit) of a per-unit entry for a claimed metric "<checkpoint> <name>" (the checkpoint or
    one sharing its sizes, `same_sizes`; the name one of `metrics`), or None when it has no count."""
    checkpoint, _, name = metric.partition(" ")
    checkpoint = entry.get("same_sizes", {}).get(checkpoint, checkpoint)
    counts = entry["checkpoints"].get(checkpoint)
    spec = entry.get("metrics", {}).get(name)
    if counts is None or spec is None:
        return None
    return float(counts[spec["flops"]]), spec["unit"]


def _implied_per_unit(claim, entry: dict, peak: Peak) -> Implied | None:
    found = unit_flops(entry, claim.metric)
    if found is None:
        return None
    flops, unit = found
    return Implied(peak.percent(float(claim.value) * flops), f"{unit}s/s", None, "", flops, peak, unit)


def sample_flops(entry: dict, batch_size: int | None) -> float:
    """FLOPs a sample at a batch size: the registry's count there; else, for a model with work done
    once a batch (`flops_per_batch`, e.g. a text batch fed with every image batch), an image's share plus the batch
    part over the batch size; else the one count (a sample costs the same at any batch size)."""
    if batch_size in entry["per_batch_size"]:
        return float(entry["per_batch_size"][batch_size])
    if "flops_per_batch" in entry and batch_size:
        return float(entry["flops_per_item"]) + float(entry["flops_per_batch"]) / batch_size
    return float(entry["flops_per_sample"])


def implied(claim, registry: dict | None = None) -> Implied | None:
    """The implied % of peak of a throughput claim, or None when it cannot be assessed (see why_not).
    A claim the registry reads as batches/s (`reading: throughput_batches` at a batch size) counts
    that many samples a unit; the other reading is the plain samples/s (and the other way round)."""
    if claim.kind != "throughput":
        return None
    registry = load_registry() if registry is None else registry
    entry = registry.get(claim.model)
    peak = chip_peak(str(claim.target), claim.precision or "")
    if entry is None or peak is None:
        return None
    if "checkpoints" in entry:
        return _implied_per_unit(claim, entry, peak)
    reading = getattr(claim, "reading", None)
    bs = reading.batch_size if reading is not None else claim.batch_size
    per_sample = float(sample_flops(entry, bs))
    as_samples = peak.percent(float(claim.value) * per_sample)
    as_batches = peak.percent(float(claim.value) * bs * per_sample) if bs else None
    batches_label = f"batches/s of bs{bs}"
    if reading is not None and reading.metric == "throughput_batches":
        return Implied(as_batches, batches_label, as_samples, "samples/s", per_sample, peak)
    other = as_batches if as_batches is not None and bs != 1 else None
    dependent = "flops_per_batch" in entry
    return Implied(as_samples, "samples/s", other, batches_label, per_sample, peak, batch_dependent=dependent,
                   plausible_from_bs=_plausible_from_bs(entry, float(claim.value), peak) if dependent else None)


def _plausible_from_bs(entry: dict, samples_per_s: float, peak: Peak) -> int | None:
    """The least batch size at which `samples_per_s` x (an item + the batch part / bs) fits the peak;
    None when even the items alone exceed it."""
    import math

    headroom = peak.flops - samples_per_s * float(entry["flops_per_item"])
    if headroom <= 0:
        return None
    return max(1, math.ceil(samples_per_s * float(entry["flops_per_batch"]) / headroom))


def why_not(claim, registry: dict | None = None) -> str | None:
    """Why a throughput claim gets no implied % of peak (None when it gets one or is not throughput)."""
    if claim.kind != "throughput":
        return None
    registry = load_registry() if registry is None else registry
    if claim.model not in registry:
        return f"no FLOPs count for {claim.model}'s graph (claims/flops.yaml): % of peak not assessed"
    entry = registry[claim.model]
    if "checkpoints" in entry and unit_flops(entry, claim.metric) is None:
        return (f"no FLOPs count for {claim.metric!r} in {claim.model}'s entry (claims/flops.yaml: its checkpoints "
                f"{', '.join(entry['checkpoints'])}; metrics {', '.join(entry.get('metrics', {}))}): "
                "% of peak not assessed")
    if chip_peak(str(claim.target), claim.precision or "") is None:
        return f"no {claim.precision} peak listed for {claim.target} (zoorepro/peaks.yaml): % of peak not assessed"
    return None
