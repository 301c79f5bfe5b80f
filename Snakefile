# zoorepro: every documented step of the model-zoo documents as a rule of one DAG.
# Parameters: params.yaml (validated against schemas/params.schema.yaml and each model's
# zoorepro/<model>/params.schema.yaml when the DAG starts).
# Full-scale tables: results/{model}_{target}.csv; mini-scale tables: results/mini/{model}_{target}.csv;
# shape-scale tables (real sizes, random weights, throughput only): results/shape/{model}_{target}.csv.

from snakemake.utils import min_version

min_version("9.0")


configfile: "params.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"


wildcard_constraints:
    model="|".join(MODELS),
    scale="mini|full|shape",
    resdir="results|results/mini|results/shape",
    target="[A-Za-z0-9]+",
    bs=r"\d+",
    ext="om|onnx|engine",
    entry="[A-Za-z0-9_]+",


# Stages every model shares ({model} wildcard).
include: "rules/data.smk"
include: "rules/compare.smk"
include: "rules/table.smk"
include: "rules/report.smk"
include: "rules/peaks.smk"
# One rules file per model: its own steps and input functions.
include: "rules/vilbert.smk"
include: "rules/videobert.smk"
include: "rules/actbert.smk"
include: "rules/llava_video.smk"
include: "rules/clipbert.smk"


# Under SLURM: the default partition and runtime of every rule that names none (rules/common.smk).
place_on_cluster(workflow.rules)


rule all:
    input:
        default_tables(),
        default_figures(),
