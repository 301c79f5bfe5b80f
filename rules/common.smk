# Helpers every model's rules use: params validation, the model registry, the table and compare
# inputs the shared rules ask of each model, and the named target validator. A model's own input
# functions live in its package (zoorepro/<model>/inputs.py), so rules/*.smk hold rules only.
import os
import sys
from pathlib import Path

sys.path.insert(0, workflow.basedir)  # the workflow's own zoorepro, also in a copy of the repo

from zoorepro import jobenv, lineage, models, runlock, yamlutil
from zoorepro.backends import get_backend
from zoorepro.config import figures_dir, results_dir, target_settings, validate
from zoorepro.planted import claims_path as planted_path
from zoorepro.errors import ConfigError, ToolchainMissing
from zoorepro.runners import get_runner

# Every job runs the workflow's own python and keeps library caches in work/.cache (zoorepro/jobenv.py).
jobenv.prepare(workflow.workdir_init)

# Snakemake's lock files, safe to keep (zoorepro/runlock.py): the main process takes a lock the kernel
# releases when it dies; holding it, it clears the lock files a killed Snakemake left behind.
RUN_LOCK = runlock.RunLock(held=False)
if workflow.is_main_process:
    RUN_LOCK = runlock.hold(workflow.workdir_init)
    for stale in RUN_LOCK.cleared:
        print(f"runlock: removed {stale} (left by a Snakemake run that no longer exists)", file=sys.stderr)
    if not RUN_LOCK.held:
        print(f"runlock: another Snakemake run of this workflow is active here (pid {RUN_LOCK.other})", file=sys.stderr)

for configfile in workflow.configfiles:  # Snakemake's own YAML reading keeps the last of two equal keys
    yamlutil.load_file(configfile)
validate(config, source=f"parameters ({', '.join(map(str, workflow.configfiles))}"
         f"{' with --config overrides' if workflow.config_settings.config else ''})")

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


def default_figures():
    """Every default table's figures (rules/report.smk), what `snakemake --report` shows."""
    scale = config["scale"]
    return [figures_dir(scale, model, target) for model, targets in config["tables"][scale].items() for target in targets]


def all_cores(wildcards):
    """`threads:` of a step that must have the machine to itself (timings, featurization): every
    core of the run, asked when a job is made, so `snakemake --unlock` and other commands that
    run no job do not need --cores. Under SLURM (profiles/slurm) the cores of a node: params
    `cluster.cores`, or this host's when 0 (the one-node cluster of tests/test_slurm.py)."""
    if on_cluster():
        return config["cluster"]["cores"] or len(os.sched_getaffinity(0))
    return workflow.cores


# Placement under SLURM (snakemake --executor slurm --profile profiles/slurm): params `cluster:`.
# Resources a local run does not constrain (slurm_partition, gres) are ignored there.
def on_cluster():
    """True in a SLURM run's main process and in its job steps (the plugin's own executors)."""
    plugin = workflow.executor_plugin
    return plugin is not None and plugin.name in ("slurm", "slurm-jobstep")


def chip_placement(wildcards):
    """params cluster.chips entry of the job's target hardware: {partition, gres?}."""
    return config["cluster"]["chips"][config["targets"][wildcards.target]["hardware"]]


def chip_partition(wildcards):
    """`slurm_partition` of a step that runs on the target's chip (compile, infer, perf, peak):
    the partition of the hosts holding that chip."""
    return chip_placement(wildcards)["partition"]


def chip_gres(wildcards):
    """`gres` of a chip step (e.g. npu:1, gpu:1); empty (none asked) for a cpu target."""
    return chip_placement(wildcards).get("gres", "")


def network_partition(wildcards):
    """`slurm_partition` of a step that downloads: nodes that reach the internet."""
    return config["cluster"]["partitions"]["network"]


def data_mb(*paths):
    """Megabytes under `paths` (files, or folders walked whole; missing ones count 0): what a
    CPU-heavy step reads, for sizing its memory."""
    total = 0
    for path in map(Path, paths):
        if path.is_file():
            total += path.stat().st_size
        elif path.is_dir():
            total += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return total / 1e6


def data_mem_mb(input, *data):
    """`mem_mb` of a CPU-heavy step (featurization, frame sampling, training) sized from its data
    (its inputs and the folders `data` it reads through params): params cluster.base_mem_mb +
    mem_per_input_mb x MB, at most max_mem_mb. A model passes its own data folders (its rules
    file); nothing here knows a model."""
    c = config["cluster"]
    return int(min(c["base_mem_mb"] + c["mem_per_input_mb"] * data_mb(*input, *data), c["max_mem_mb"]))


def place_on_cluster(rules):
    """Every rule that names no partition runs in params cluster.partitions.default, with
    cluster.runtime_min minutes unless it asks otherwise (called once, after every rules file)."""
    for r in rules:
        if "slurm_partition" not in r.resources:
            r.resources["slurm_partition"] = config["cluster"]["partitions"]["default"]
        if "runtime" not in r.resources:
            r.resources["runtime"] = config["cluster"]["runtime_min"]


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


def peak_precision(wildcards):
    """The precision a target's peak is looked up or measured at (peaks.smk): the model's own (its
    Inputs.peak_precision, e.g. the dtype a torch runner computes in at that scale), else the target
    backend's."""
    own = getattr(INPUTS[wildcards.model], "peak_precision", None)
    return own(wildcards) if own is not None else precision(wildcards)


def validate_target(model, target, resdir):
    """Named validator, run while the DAG is planned (so before any job): refuse an unknown
    target, and a target whose toolchain or framework is missing, naming the portable table of
    this model and scale. A dry run only plans, so it checks the params alone. No fallback to
    another target, ever."""
    target_settings(config, target)
    try:
        runner = models.runner_name(model, target, config)
        if runner is not None:
            get_runner(runner, target, config).check(model, probe=not workflow.dryrun)
        elif not workflow.dryrun:
            get_backend(target, config).check()
    except ToolchainMissing as exc:
        raise exc.for_table(model, resdir) from None


def rebuild_stale(model, scale):
    """Hash-triggered rerun (zoorepro/lineage.py), run while the table's job is planned, before its
    upstream jobs are: an artifact of work/<scale>/<model> whose recorded input is gone or was
    rebuilt is removed, so Snakemake rebuilds it and what follows. Snakemake alone keeps it when a
    killed job deleted an intermediate whose consumers' outputs still exist. Only a run that will
    execute jobs and holds the folder's run lock removes anything (Snakemake takes its own lock only
    after planning); a dry run, --dag/--summary and the like, or a second run only say so."""
    executing = workflow.executor_plugin is not None and not workflow.dryrun
    holds_lock = workflow.is_main_process and RUN_LOCK.held
    dry = not (executing and holds_lock)
    removed = lineage.invalidate_stale(Path("work", scale, model), dry_run=dry)
    for path in removed:
        verb = "would be rebuilt" if dry else "removed, to be rebuilt"
        print(f"lineage: {path} {verb}: an input it was built from is gone or was rebuilt", file=sys.stderr)
    if removed and not dry:
        workflow.iocache.clear()  # Snakemake may already have cached these files as present


def table_inputs(wildcards):
    """The model's measurement files and toolchain record, once its target passed validate_target;
    at mini scale also the planted claims its mini generator wrote (zoorepro/planted.py)."""
    scale = INPUTS[wildcards.model].scale(wildcards)
    if scale not in models.scales(wildcards.model):
        raise ConfigError(f"{wildcards.model} has no {scale} scale (its scales: "
                          f"{', '.join(models.scales(wildcards.model))}); e.g. "
                          f"{results_dir(models.scales(wildcards.model)[0])}/{wildcards.model}_{wildcards.target}.csv")
    validate_target(wildcards.model, wildcards.target, wildcards.resdir)
    rebuild_stale(wildcards.model, scale)
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
