# Helpers every model's rules use: params validation, the model registry, the table and compare
# inputs the shared rules ask of each model, and the named target validator. A model's own input
# functions live in its package (zoorepro/<model>/inputs.py), so rules/*.smk hold rules only.
import sys
from pathlib import Path

sys.path.insert(0, workflow.basedir)  # the workflow's own zoorepro, also in a copy of the repo

from zoorepro import models
from zoorepro.backends import get_backend
from zoorepro.config import results_dir, target_settings, validate
from zoorepro.planted import claims_path as planted_path
from zoorepro.errors import ToolchainMissing
from zoorepro.runners import get_runner

validate(config)

MODELS = models.model_names()
# model -> its input functions (zoorepro/<model>/inputs.py, e.g. INPUTS[model].table)
INPUTS = {model: models.inputs(model, config) for model in MODELS}


def default_tables():
    """The tables the default target and `dvc repro` build: params.yaml `tables` at `scale`."""
    scale = config["scale"]
    return [
        f"{results_dir(scale)}/{model}_{target}.csv"
        for model, targets in config["tables"][scale].items()
        for target in targets
    ]


def output_dir(wildcards, output):
    """The folder of a rule's first output (for steps that take a folder)."""
    return str(Path(output[0]).parent)


def download_tofu_arg(wildcards):
    return "--trust-on-first-use" if config["downloads"]["trust_on_first_use"] else ""


def source_patches(wildcards):
    """The model's patch files (patches/<its PATCH_GLOB>/*.patch), in the order they apply."""
    return models.patch_files(wildcards.model, Path(workflow.basedir, "patches"))


def precision(wildcards):
    """What the target's backend computes in (ATC's force_fp16, IxRT's fp16, onnxruntime fp32)."""
    return get_backend(wildcards.target, config).precision


def validate_target(model, target):
    """Named validator, run while the DAG is planned (so before any job): refuse an unknown
    target, and a target whose toolchain or framework is missing. A dry run only plans, so it
    checks the params alone. No fallback to another target, ever."""
    target_settings(config, target)
    runner = models.pipeline(model).RUNNER
    if runner is not None:
        get_runner(runner, target, config).check(model, probe=not workflow.dryrun)
    elif not workflow.dryrun:
        try:
            get_backend(target, config).check()
        except ToolchainMissing as exc:
            raise exc.for_model(model) from None


def table_inputs(wildcards):
    """The model's measurement files and toolchain record, once its target passed validate_target;
    at mini scale also the planted claims its mini generator wrote (zoorepro/planted.py)."""
    validate_target(wildcards.model, wildcards.target)
    inputs = INPUTS[wildcards.model].table(wildcards)
    if wildcards.resdir == results_dir("mini"):
        inputs["planted"] = planted_path(wildcards.model)
    return inputs


def planted_arg(wildcards, input):
    """`--planted FILE` for a mini table, nothing for a full one."""
    return f"--planted {input.planted}" if "planted" in input.keys() else ""


def compare_settings(wildcards):
    return config[wildcards.model]["compare"]


def compare_reference(wildcards):
    c = compare_settings(wildcards)
    return f"work/{wildcards.scale}/{wildcards.model}/{c['reference']}/{c['outputs']}"


def compare_outputs(wildcards):
    c = compare_settings(wildcards)
    return f"work/{wildcards.scale}/{wildcards.model}/{wildcards.target}/{c['outputs']}"


def compare_batch_size(wildcards):
    return INPUTS[wildcards.model].compare_batch_size(wildcards)
