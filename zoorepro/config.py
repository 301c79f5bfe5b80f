"""params.yaml: load, validate against schemas/params.schema.yaml, and answer questions about it.

A bad value stops the run with a message that names the key (e.g. `<model>.batch_sizes[2]`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml

from . import yamlutil
from .errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent
PARAMS_PATH = REPO_ROOT / "params.yaml"
SCHEMA_PATH = REPO_ROOT / "schemas" / "params.schema.yaml"
# full: real downloads and weights; mini: tiny random-weight models on generated data (planted
# outcomes); shape: the real architectures at their real sizes with random weights and synthetic
# inputs of the real shapes (throughput only: FLOPs and speed do not depend on weight values).
SCALES = ("mini", "full", "shape")
RESULTS_DIRS = {"full": "results", "mini": "results/mini", "shape": "results/shape"}
CHIP_BACKENDS = ("ascend",)


def _key_path(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


def params_schema(schema_path: Path = SCHEMA_PATH) -> dict:
    """The generic schema with every registered model merged in: its block (required, checked
    against zoorepro/<model>/params.schema.yaml) and its entry in `tables`."""
    from . import models

    schema = yaml.safe_load(schema_path.read_text())
    for model in models.model_names():
        schema["properties"][model] = yaml.safe_load(models.params_schema_path(model).read_text())
        schema["required"].append(model)
        schema["$defs"]["table_map"]["properties"][model] = {"$ref": "#/$defs/target_list"}
    return schema


def validate(params: Any, schema_path: Path = SCHEMA_PATH, source: str = "params.yaml") -> dict:
    """Validate params against the schema and the cross-field rules; return them unchanged.
    `source` names where they came from in messages (Snakemake's config is params.yaml plus any
    --config / --configfile overrides)."""
    schema = params_schema(schema_path)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(params), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  {_key_path(e.absolute_path)}: {e.message}" for e in errors]
        raise ConfigError(f"invalid {source}:\n" + "\n".join(lines))
    _check_cross_fields(params, source)
    return params


def _check_cross_fields(params: dict, source: str = "params.yaml") -> None:
    problems = [f"  targets.{name}: target names must be strings (quote numeric names such as '310')"
                for name in params["targets"] if not isinstance(name, str)]
    from . import models
    from .backends import get_backend

    for scale, table_map in params["tables"].items():
        for model, targets in table_map.items():
            if scale not in models.scales(model):
                problems.append(f"  tables.{scale}.{model}: {model} has no {scale} scale (its scales: "
                                f"{', '.join(models.scales(model))})")
            for i, target in enumerate(targets):
                if target not in params["targets"]:
                    problems.append(f"  tables.{scale}.{model}[{i}]: unknown target {target!r} "
                                    f"(known: {', '.join(params['targets'])})")

    for name in params["targets"]:  # every target's settings, also those only a chip run would read
        if "backend" not in params["targets"][name]:  # a target only runners drive (e.g. MindIE's npu)
            continue
        try:
            get_backend(name, params)
        except ConfigError as exc:
            problems.append(f"  {exc}")
    chips = params["cluster"]["chips"]
    problems += [f"  targets.{name}.hardware: {target['hardware']!r} has no cluster.chips entry (where its "
                 f"steps run under SLURM)" for name, target in params["targets"].items()
                 if isinstance(name, str) and target["hardware"] not in chips]
    for model in models.model_names():
        check = getattr(models.pipeline(model), "check_params", None)
        problems += [f"  {model}.{problem}" for problem in (check(params[model]) if check else [])]
    if problems:
        raise ConfigError(f"invalid {source}:\n" + "\n".join(problems))


def load_params(path: Path = PARAMS_PATH) -> dict:
    """Read and validate params.yaml."""
    try:
        params = yamlutil.load_file(path)
    except yaml.YAMLError as exc:
        raise ConfigError(f"params.yaml is not valid YAML: {exc}") from exc
    except yamlutil.DuplicateKeyError as exc:
        raise ConfigError(str(exc)) from exc
    return validate(params)


def target_settings(params: dict, target: str) -> dict:
    """The targets entry for `target`, or a ConfigError listing the known targets."""
    try:
        return params["targets"][target]
    except KeyError:
        raise ConfigError(f"unknown target {target!r}: params.yaml `targets` knows "
                          f"{', '.join(sorted(params['targets']))}") from None


def results_dir(scale: str) -> str:
    """Full tables live in results/, mini tables in results/mini/, shape tables in results/shape/:
    never mixed."""
    if scale not in SCALES:
        raise ConfigError(f"unknown scale {scale!r}: expected one of {SCALES}")
    return RESULTS_DIRS[scale]


def figures_dir(scale: str, model: str, target: str) -> str:
    """The folder of a table's figures and curve data (rules/report.smk, zoorepro/figures.py)."""
    return f"{results_dir(scale)}/report/{model}_{target}"


def scale_of_results_dir(resdir: str) -> str:
    return {folder: scale for scale, folder in RESULTS_DIRS.items()}[resdir.rstrip("/")]
