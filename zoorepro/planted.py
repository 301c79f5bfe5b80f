"""Planted outcomes: the claims a mini generator writes beside the data it generates.

A random-weight model scores whatever chance gives, so a mini table could not tell a right chain
from a wrong one. Each model's mini generator therefore runs its random-weight model once in the
model's own framework (the eager reference), then writes the ground truth (answers, labels,
caption-video pairs) so that every accuracy metric takes a chosen, non-degenerate value, computes
that value with an implementation independent of the pipeline's own metric code, and records it
here as a claim of scale `mini`:

    data/mini/<model>/planted_claims.yaml

The file is a claims registry of its own (schemas/claims.schema.yaml): one document
`planted:<generator module>` and its claims `<model>.mini.<metric slug>`, `scale: mini`, target
`any`. Tables at mini scale judge their accuracy rows against these claims with
params.yaml `tolerances.planted_points`; the documents' claims stay NOT_COMPARABLE at mini scale.
What a REPRODUCED planted claim proves: the chain (preprocess, export, graph fixes, compile,
inference, output order, postprocess, table) computes what the framework's own eager model and
an independent metric computed. What it does not prove: anything about the documents' numbers.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from .claims import PLANTED_PREFIX, Claim, ClaimsError, load_planted
from .fsutil import atomic_write_text

FILE_NAME = "planted_claims.yaml"
TABLE = "planted by the mini generator"


@dataclass(frozen=True)
class PlantedMetric:
    """One planted value: the metric as the model's tables name it, its unit (fraction, percent,
    rank), which way is better, and the batch size when the pipeline measures it at one.
    `target`: 'any' (the default: every table of the scale judges it), or the one target whose
    tables it is planted for (a model whose targets compute different answers, e.g. from a prompt
    only one target's toolchain uses); its claim id then carries the target: `<model>.mini.<target>_<slug>`."""

    metric: str
    value: float
    unit: str
    higher_is_better: bool = True
    batch_size: int | None = None
    precision: str = "fp32"
    target: str = "any"


def slug(metric: str) -> str:
    """The id part of a metric, as claims/claims.yaml spells it: R@1 -> r_at_1, MedianR ->
    median_r, MeanR -> mean_r, vqa_score -> vqa_score."""
    special = {"MedianR": "median_r", "MeanR": "mean_r"}
    if metric in special:
        return special[metric]
    return re.sub(r"[^a-z0-9_]", "_", metric.lower().replace("@", "_at_"))


def path_for(data_dir: Path) -> Path:
    """The planted claims file in a mini data folder."""
    return Path(data_dir) / FILE_NAME


def claims_path(model: str) -> str:
    """Where a model's mini generator writes its planted claims (relative to the repo root)."""
    return f"data/mini/{model}/{FILE_NAME}"


def planted_registry(model: str, generator: str, dataset: str, method: str,
                     metrics: list[PlantedMetric], note: str = "") -> dict:
    """The planted claims as a claims-registry document (plain data, ready for YAML)."""
    document = PLANTED_PREFIX + generator
    claims = []
    for m in metrics:
        claims.append({
            "id": f"{model}.mini.{slug(m.metric) if m.target == 'any' else m.target + '_' + slug(m.metric)}",
            "document": document, "model": model, "scale": "mini", "target": m.target, "table": TABLE,
            "batch_size": m.batch_size, "precision": m.precision,
            "metric": m.metric, "kind": "accuracy", "value": float(m.value), "unit": m.unit,
            "higher_is_better": m.higher_is_better, "dataset": dataset,
            "caveats": [f"expected value computed by {method}",
                        "checks the chain (preprocess to table), not the document's numbers"],
        })
    return {"documents": [{"file": document, "model": model,
                           "title": f"Planted by the mini generator {generator}",
                           "claims": "listed", "note": note or f"planted outcomes; {method}"}],
            "claims": claims}


def write_planted_claims(data_dir: Path, model: str, generator: str, dataset: str, method: str,
                         metrics: list[PlantedMetric], note: str = "") -> list[Claim]:
    """Write `<data_dir>/planted_claims.yaml` (validated by loading it back before it is put in
    place) and return its claims. Values are written with full float precision."""
    registry = planted_registry(model, generator, dataset, method, metrics, note)
    header = (f"# Planted outcomes of the mini {model} data, written by {generator} (zoorepro/planted.py).\n"
              "# Generated file: the expected values of the mini chain, not a document's claims.\n")
    text = header + yaml.safe_dump(registry, sort_keys=False, allow_unicode=True, width=100)
    path = path_for(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    check = path.with_name(f".{FILE_NAME}.check")
    check.write_text(text)
    try:
        claims = load_planted(check)
    except ClaimsError as exc:
        raise ClaimsError(f"{generator} planted invalid claims: {exc}") from exc
    finally:
        check.unlink(missing_ok=True)
    atomic_write_text(path, text)
    return claims
