"""The claims registry: every number the source documents report, loaded from claims/claims.yaml.

Claims are data so that the table step can judge measurements without any number living in
code, and so that a reviewer can check each number against its document in one file. Loading
validates against schemas/claims.schema.yaml and then checks what a schema cannot (unique ids,
claims pointing at listed documents), because a silently wrong registry would turn every verdict
downstream into a wrong one.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from zoorepro import yamlutil
from zoorepro.errors import ZooreproError

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CLAIMS_PATH = REPO_ROOT / "claims" / "claims.yaml"
SCHEMA_PATH = REPO_ROOT / "schemas" / "claims.schema.yaml"

# How many schema errors one message lists; more would bury the first, most useful one.
_MAX_REPORTED_ERRORS = 8


class ClaimsError(ZooreproError):
    """claims/claims.yaml is unreadable or invalid; the message names the claim id or the key."""


@dataclass(frozen=True)
class Tolerance:
    """A per-claim override of params.yaml `tolerances`, read the same way: `relative` is a
    fraction of the claimed value, `points` are points of the claim's own scale (1.0 point =
    0.01 for a fraction). A dataclass rather than a dict so that a Claim stays hashable."""

    relative: float | None = None
    points: float | None = None

    def to_dict(self) -> dict[str, float]:
        """Only the bounds that are set, so the JSON shows what the registry says."""
        pairs = (("relative", self.relative), ("points", self.points))
        return {k: v for k, v in pairs if v is not None}


@dataclass(frozen=True)
class Reading:
    """Which measurement a throughput claim is compared with when the document's batch size or
    unit is not what its tool measured: `metric` (throughput = samples/s, throughput_batches =
    batches/s) at `batch_size`, and `why`."""

    metric: str
    batch_size: int
    why: str

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "batch_size": self.batch_size, "why": self.why}


@dataclass(frozen=True)
class Claim:
    """One number one document reports, with what it takes to compare a measurement to it.

    `value` is the number as printed (an int stays an int) and `unit` says how to read it.
    `target` is the chip it was measured on ('reference' = no hardware, 'any' = not fixed).
    """

    id: str
    document: str
    model: str
    target: str
    table: str
    batch_size: int | None
    precision: str
    metric: str
    kind: str
    value: float | int
    unit: str
    higher_is_better: bool
    dataset: str
    caveats: tuple[str, ...] = ()
    tolerance: Tolerance | None = None
    reading: Reading | None = None
    scale: str = "full"

    @property
    def planted(self) -> bool:
        """A mini generator's number (zoorepro/planted.py): checks the chain, not a document."""
        return self.scale == "mini"

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Claim:
        """Build from one schema-valid registry record (lists become tuples: frozen is frozen)."""
        tol = raw.get("tolerance")
        return cls(
            id=raw["id"],
            document=raw["document"],
            model=raw["model"],
            target=str(raw["target"]),
            table=raw["table"],
            batch_size=raw["batch_size"],
            precision=raw["precision"],
            metric=raw["metric"],
            kind=raw["kind"],
            value=raw["value"],
            unit=raw["unit"],
            higher_is_better=raw["higher_is_better"],
            dataset=raw["dataset"],
            caveats=tuple(raw["caveats"]),
            tolerance=(
                Tolerance(relative=tol.get("relative"), points=tol.get("points"))
                if tol
                else None
            ),
            reading=Reading(**raw["reading"]) if raw.get("reading") else None,
            scale=raw.get("scale", "full"),
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with every field, in registry order; tolerance is None when unset."""
        return {
            "id": self.id,
            "document": self.document,
            "model": self.model,
            "target": self.target,
            "table": self.table,
            "batch_size": self.batch_size,
            "precision": self.precision,
            "metric": self.metric,
            "kind": self.kind,
            "value": self.value,
            "unit": self.unit,
            "higher_is_better": self.higher_is_better,
            "dataset": self.dataset,
            "caveats": list(self.caveats),
            "tolerance": self.tolerance.to_dict() if self.tolerance else None,
            "reading": self.reading.to_dict() if self.reading else None,
            "scale": self.scale,
        }


@dataclass(frozen=True)
class Document:
    """One source document: `claims` is 'listed' (its numbers are claims), 'none' (it reports
    no numbers; `reason` says why, `note` where numbers elsewhere were deliberately left out) or
    'upstream' (it reports none; its claims are its upstream project's numbers, `reason` says why)."""

    file: str
    model: str
    title: str
    claims: str
    note: str
    reason: str | None = None


@dataclass(frozen=True)
class Registry:
    """The whole file: the documents and the claims they make."""

    documents: tuple[Document, ...]
    claims: tuple[Claim, ...]


def _read_yaml(path: Path, what: str) -> Any:
    """Parse a YAML file, turning I/O and syntax failures into one actionable ClaimsError."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ClaimsError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    try:
        return yamlutil.load(text, str(path))
    except yaml.YAMLError as exc:
        raise ClaimsError(f"{what} {path} is not valid YAML: {exc}") from exc
    except yamlutil.DuplicateKeyError as exc:
        raise ClaimsError(str(exc)) from exc


def _location(path: Sequence[Any], data: Any) -> str:
    """Render a JSON path like claims[3] (id 'x').kind, naming the claim id when there is one,
    because an index alone makes the reader count records in the file."""
    out = ""
    node = data
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("id"), str):
                out += f" (id {node['id']!r})"
        else:
            out += f".{part}" if out else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out or "(top level)"


def _with_models(schema: dict) -> dict:
    """The registry's models and their metric names, merged into the claims schema: the model
    enum, the metric enum, and one `model -> its metrics` rule per model (pipeline.py CLAIM_METRICS)."""
    from . import models

    claim = schema["$defs"]["claim"]
    metrics = {m: ("throughput", *models.pipeline(m).CLAIM_METRICS) for m in models.model_names()}
    claim["properties"]["model"] = {"enum": list(metrics)}
    claim["properties"]["metric"] = {"enum": sorted({x for names in metrics.values() for x in names})}
    claim["allOf"] += [{"if": {"properties": {"model": {"const": m}}},
                        "then": {"properties": {"metric": {"enum": list(names)}}}} for m, names in metrics.items()]
    return schema


def _validate_schema(data: Any, path: Path) -> None:
    """Check the registry against the JSON Schema; list the errors with their locations."""
    schema = _with_models(_read_yaml(SCHEMA_PATH, "claims schema"))
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    if not errors:
        return
    lines: list[str] = []
    for err in errors:
        line = f"{_location(list(err.absolute_path), data)}: {err.message}"
        if line not in lines:
            lines.append(line)
    more = len(lines) - _MAX_REPORTED_ERRORS
    shown = lines[:_MAX_REPORTED_ERRORS] + ([f"... and {more} more"] if more > 0 else [])
    raise ClaimsError(f"{path} does not match {SCHEMA_PATH.name}:\n  " + "\n  ".join(shown))


PLANTED_PREFIX = "planted:"


def _check_consistency(
    documents: Sequence[Document], claims: Sequence[Claim], path: Path, planted: bool = False
) -> None:
    """What the schema cannot say: unique ids and files, claims that agree with documents, and
    scales never mixed: the registry holds documents' full-scale claims only, a planted file
    (`planted`) only its generator's mini-scale claims."""
    for doc in documents:
        if doc.file.startswith(PLANTED_PREFIX) != planted:
            raise ClaimsError(f"{path}: document {doc.file!r} does not belong in "
                              f"{'a planted claims file' if planted else 'the claims registry'}")
    for claim in claims:
        if claim.planted != planted:
            raise ClaimsError(f"{path}: claim {claim.id!r} has scale {claim.scale!r}; "
                              f"{'planted claims are mini' if planted else 'the registry holds full-scale claims only'}")
    docs: dict[str, Document] = {}
    for doc in documents:
        if doc.file in docs:
            raise ClaimsError(f"{path}: document {doc.file!r} is listed twice")
        docs[doc.file] = doc
    first_index: dict[str, int] = {}
    for i, claim in enumerate(claims):
        if claim.id in first_index:
            raise ClaimsError(
                f"{path}: duplicate claim id {claim.id!r} "
                f"(claims[{first_index[claim.id]}] and claims[{i}])"
            )
        first_index[claim.id] = i
        doc = docs.get(claim.document)
        if doc is None:
            raise ClaimsError(
                f"{path}: claim {claim.id!r} names document {claim.document!r}, "
                "which is not in `documents`"
            )
        if doc.model != claim.model:
            raise ClaimsError(
                f"{path}: claim {claim.id!r} has model {claim.model!r} but its document "
                f"{doc.file!r} is about {doc.model!r}"
            )
    for doc in documents:
        n = sum(1 for c in claims if c.document == doc.file)
        if doc.claims in ("listed", "upstream") and n == 0:
            raise ClaimsError(f"{path}: document {doc.file!r} says `claims: {doc.claims}` but has none")
        if doc.claims == "none" and n:
            raise ClaimsError(f"{path}: document {doc.file!r} says `claims: none` but has {n}")


def load_registry(path: Path | None = None, planted: bool = False) -> Registry:
    """Load and validate the whole registry (documents and claims); default claims/claims.yaml
    next to this package, so it works from any working directory. `planted`: the file is a mini
    generator's planted claims (zoorepro/planted.py), not the registry."""
    path = Path(path) if path is not None else DEFAULT_CLAIMS_PATH
    data = _read_yaml(path, "claims registry")
    _validate_schema(data, path)
    documents = tuple(
        Document(
            file=d["file"],
            model=d["model"],
            title=d["title"],
            claims=d["claims"],
            note=d["note"],
            reason=d.get("reason"),
        )
        for d in data["documents"]
    )
    claims = tuple(Claim.from_dict(c) for c in data["claims"])
    _check_consistency(documents, claims, path, planted)
    return Registry(documents=documents, claims=claims)


def load_claims(path: Path | None = None) -> list[Claim]:
    """The validated claims, in file order. Raises ClaimsError (a ZooreproError) naming the
    offending id or key when the file is invalid or an id repeats."""
    return list(load_registry(path).claims)


def load_planted(path: Path) -> list[Claim]:
    """A mini generator's planted claims (data/mini/<model>/planted_claims.yaml), validated like
    the registry; every claim has scale mini and a planted: document."""
    return list(load_registry(Path(path), planted=True).claims)


def claims_for(claims: Iterable[Claim], model: str) -> list[Claim]:
    """The claims of one model, in registry order."""
    return [c for c in claims if c.model == model]


def _format_value(value: float) -> str:
    """The number as the registry holds it, i.e. as the document prints it (13.0 stays 13.0)."""
    return str(value)


def format_table(claims: Sequence[Claim]) -> str:
    """An aligned plain-text table, one claim a line, for people reading a terminal."""
    header = ("id", "target", "bs", "precision", "metric", "value", "unit", "better")
    rows = [
        (
            c.id,
            c.target,
            "-" if c.batch_size is None else str(c.batch_size),
            c.precision,
            c.metric,
            _format_value(c.value),
            c.unit,
            "higher" if c.higher_is_better else "lower",
        )
        for c in claims
    ]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in (header, *rows)
    ]
    return "\n".join(lines)


def add_claims_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The `claims` command's options (--json, --model, --claims), added to `parser`: the one
    definition both `python -m zoorepro claims` and `main_claims` parse with."""
    parser.add_argument("--json", action="store_true", help="print a JSON list of claim objects")
    parser.add_argument("--model", metavar="M", help="only this model's claims (a registered model: zoorepro/<model>/)")
    parser.add_argument(
        "--claims",
        metavar="PATH",
        type=Path,
        default=None,
        help=f"registry file (default: {DEFAULT_CLAIMS_PATH.relative_to(REPO_ROOT)})",
    )
    return parser


CLAIMS_DESCRIPTION = "List the numbers the source documents claim."


def _parser() -> argparse.ArgumentParser:
    return add_claims_arguments(
        argparse.ArgumentParser(prog="zoorepro claims", description=CLAIMS_DESCRIPTION)
    )


def run_claims(args: argparse.Namespace) -> int:
    """Print the registry as `args` (parsed by `add_claims_arguments`'s options) asks. Returns
    the exit status: 0 on success, 2 on an invalid registry or an unknown model (message on
    stderr)."""
    try:
        registry = load_registry(args.claims)
    except ZooreproError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    selected = list(registry.claims)
    if args.model is not None:
        models = {d.model: d for d in registry.documents}
        if args.model not in models:
            print(
                f"error: unknown model {args.model!r}; known: {', '.join(sorted(models))}",
                file=sys.stderr,
            )
            return 2
        selected = claims_for(selected, args.model)
        doc = models[args.model]
        if not selected and doc.reason:
            print(f"{args.model}: no claims ({doc.file}): {doc.reason}", file=sys.stderr)
    if args.json:
        print(json.dumps([c.to_dict() for c in selected], indent=2))
    elif selected:
        print(format_table(selected))
    return 0


def main_claims(argv: Sequence[str] | None = None) -> int:
    """`python -m zoorepro claims [--json] [--model M]`: print the registry. Returns the exit
    status: 0 on success, 2 on an invalid registry or an unknown model (message on stderr)."""
    try:
        args = _parser().parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:  # argparse exits on --help and on usage errors; report, don't exit
        return exc.code if isinstance(exc.code, int) else 2
    return run_claims(args)
