# Helpers every model's rules use: params validation, the model registry, tables, targets and the
# backends/runners behind them. Model-specific input functions live in rules/<model>.smk.
import sys
from pathlib import Path

sys.path.insert(0, workflow.basedir)  # the workflow's own zoorepro, also in a copy of the repo

from zoorepro import models
from zoorepro.backends import get_backend
from zoorepro.config import results_dir, scale_of_results_dir, target_settings, validate
from zoorepro.runners import get_runner

validate(config)

MODELS = models.model_names()
# Filled by each rules/<model>.smk: model -> function(wildcards) -> {name: path or [paths]} of the
# measurement files (key "measurements") and the toolchain record (key "toolchain") its table joins.
TABLE_INPUTS = {}
# Filled by each rules/<model>.smk with a compare step: model -> function(wildcards) -> the batch
# size the compared outputs were computed at.
COMPARE_BATCH_SIZE = {}


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


def scale_of(wildcards):
    return scale_of_results_dir(wildcards.resdir)


def download_tofu_arg(wildcards):
    return "--trust-on-first-use" if config["downloads"]["trust_on_first_use"] else ""


def manifest_entries(model):
    """The entry names of manifests/<model>.yaml (one download job each)."""
    import yaml

    manifest = yaml.safe_load(Path(workflow.basedir, "manifests", f"{model}.yaml").read_text())
    return [entry["name"] for entry in manifest["entries"]]


def full_data(model):
    """The stamps of every verified download of a model (full scale)."""
    return {f"download_{name}": f"data/full/{model}/.done/{name}" for name in manifest_entries(model)}


def artifact_suffix(target):
    """What the target's backend compiles to (om, engine, onnx)."""
    return get_backend(target, config).artifact_suffix


def precision(wildcards):
    """What the target's backend computes in (ATC's force_fp16, IxRT's fp16, onnxruntime fp32)."""
    return get_backend(wildcards.target, config).precision


def shape_words(shapes, bs):
    """`NAME:D0,D1,...` words of params `input_shapes` at batch size `bs` (the dim `bs`)."""
    return " ".join(
        f'"{name}:' + ",".join(str(bs) if d == "bs" else str(d) for d in dims) + '"'
        for name, dims in shapes.items()
    )


def validate_target(model, target):
    """Named validator, run while the DAG is planned (so before any job): refuse an unknown
    target, and a target whose toolchain or framework is missing. A dry run only plans, so it
    checks the params alone. No fallback to another target, ever."""
    target_settings(config, target)
    runner = models.pipeline(model).RUNNER
    if runner is not None:
        get_runner(runner, target, config).check(model, probe=not workflow.dryrun)
    elif not workflow.dryrun:
        get_backend(target, config).check()


def table_inputs(wildcards):
    """The model's table inputs (rules/<model>.smk), once its target passed validate_target."""
    validate_target(wildcards.model, wildcards.target)
    return TABLE_INPUTS[wildcards.model](wildcards)


def compare_settings(wildcards):
    return config[wildcards.model]["compare"]


def compare_reference(wildcards):
    c = compare_settings(wildcards)
    return f"work/{wildcards.scale}/{wildcards.model}/{c['reference']}/{c['outputs']}"


def compare_outputs(wildcards):
    c = compare_settings(wildcards)
    return f"work/{wildcards.scale}/{wildcards.model}/{wildcards.target}/{c['outputs']}"


def compare_args(wildcards):
    c = compare_settings(wildcards)
    words = ["--output-names", *c["output_names"], "--batch-size", str(COMPARE_BATCH_SIZE[wildcards.model](wildcards))]
    if c.get("statistics"):
        words += ["--statistics", *c["statistics"]]
    return " ".join(words) + f' --label "{c["label"]}"'


def runner_device(model, target):
    """The framework device a model's runner uses on `target` (e.g. paddle's cpu / gpu)."""
    return get_runner(models.pipeline(model).RUNNER, target, config).device
