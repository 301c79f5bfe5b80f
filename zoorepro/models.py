"""The model registry. A model is one package `zoorepro/<model>/` with a `pipeline.py` beside its
step modules, plus `rules/<model>.smk`, `manifests/<model>.yaml` and its params.yaml block; nothing
generic names a model. `pipeline.py` declares:

* `DOCUMENT`: the source document's file name (../shared/seeds/);
* `RUNNER`: None (compiled from ONNX by the target's backend), a runner name (zoorepro/runners/),
  or a mapping hardware kind -> runner name (`runner_name`);
* `CLAIM_METRICS`: the accuracy metric names its claims may use (the claims schema reads them);
* `dvc_stages(params, scale) -> dict`: its DVC stages (zoorepro/dvcgen.py renders them);
* optionally `check_params(block) -> list[str]`: cross-field problems in its params block, each
  as `key: message` (the block's JSON schema is `zoorepro/<model>/params.schema.yaml`);
* optionally `AGREEMENT_METRICS`: metrics that set two chips or frameworks against each other
  (besides rows of kind `parity`), drawn in the report's agreement figure (zoorepro/figures.py);
* optionally `SCALES`: the scales its rules build (default mini and full; `shape` = its real
  architecture with random weights, throughput only).

Beside it, `inputs.py` holds its rules' input functions (`Inputs`, a zoorepro.workflow.ModelInputs).
A model whose steps import a patched upstream tree also has `sources.py` with `PACKAGES` (import
name -> distribution), `PATCH_GLOB` (its folders under patches/) and `prepare_sources(dest, patches)`.
"""
from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from pathlib import Path
from types import ModuleType

import zoorepro
from .errors import ConfigError

PACKAGE_DIR = Path(zoorepro.__file__).resolve().parent


@cache
def model_names() -> tuple[str, ...]:
    """Every package of zoorepro that has a pipeline.py, sorted."""
    return tuple(sorted(m.name for m in pkgutil.iter_modules([str(PACKAGE_DIR)])
                        if m.ispkg and (PACKAGE_DIR / m.name / "pipeline.py").is_file()))


def _require(model: str) -> None:
    if model not in model_names():
        raise ConfigError(f"unknown model {model!r} (known: {', '.join(model_names())})")


def pipeline(model: str) -> ModuleType:
    _require(model)
    return importlib.import_module(f"zoorepro.{model}.pipeline")


def sources(model: str) -> ModuleType | None:
    """The model's sources module, or None for a model that imports no patched upstream tree."""
    _require(model)
    if not (PACKAGE_DIR / model / "sources.py").is_file():
        return None
    return importlib.import_module(f"zoorepro.{model}.sources")


def params_schema_path(model: str) -> Path:
    _require(model)
    return PACKAGE_DIR / model / "params.schema.yaml"


def patch_files(model: str, patches_dir: Path) -> list[Path]:
    """The model's patch files, in the order they are applied (sorted per folder, folders sorted)."""
    mod = sources(model)
    if mod is None:
        return []
    return sorted(p for d in sorted(Path(patches_dir).glob(mod.PATCH_GLOB)) if d.is_dir() for p in d.glob("*.patch"))


def scales(model: str) -> tuple[str, ...]:
    """The scales a model's rules build (pipeline.py SCALES; default mini and full)."""
    return tuple(getattr(pipeline(model), "SCALES", ("mini", "full")))


def runner_name(model: str, target: str, params: dict) -> str | None:
    """The runner that runs `model` on `target`: None for a model compiled from ONNX by the
    target's backend; pipeline.py RUNNER is one runner name, or a mapping from the target's
    hardware kind to the runner for it (a model run by different frameworks on different chips)."""
    from .config import target_settings

    runner = pipeline(model).RUNNER
    if not isinstance(runner, dict):
        return runner
    hardware = str(target_settings(params, target)["hardware"])
    if hardware not in runner:
        raise ConfigError(f"{model} runs on {', '.join(runner)} ({', '.join(sorted(set(runner.values())))}); "
                          f"target {target!r} is {hardware}")
    return runner[hardware]


def inputs(model: str, config: dict):
    """The model's input functions for its rules (`zoorepro/<model>/inputs.py`, `Inputs(config)`)."""
    _require(model)
    return importlib.import_module(f"zoorepro.{model}.inputs").Inputs(config)
