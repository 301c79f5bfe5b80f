# Stages every model shares, with `{model}` as the wildcard: upstream sources and full-scale downloads.


# Bookkeeping steps (small JSON/CSV in and out): under SLURM they run in Snakemake's own process
# on the submitting host, not as jobs (a job costs two Snakemake starts and a scheduling round).
localrules:
    sources,

rule sources:
    # The documents' `git clone ... && git apply *.patch`: the installed upstream package(s) copied
    # from the venv and patched with the model's patches/ folders (zoorepro/<model>/sources.py).
    input:
        patches=source_patches,
    output:
        manifest="work/src/{model}/SOURCES.json",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/src/{model}.log",
    params:
        dest=output_dir,
    shell:
        "python -m zoorepro.steps.sources --model {wildcards.model} --dest {params.dest} --patches patches "
        "> {log} 2>&1"


rule download:
    # Full scale: one entry of manifests/{model}.yaml, checksummed (or trusted on first use when
    # params say so), resumable, safely extracted; TLS verification always on.
    input:
        manifest="manifests/{model}.yaml",
    output:
        done="data/full/{model}/.done/{entry}",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/full/{model}/download_{entry}.log",
    params:
        tofu=download_tofu_arg,
    resources:
        slurm_partition=network_partition,
    shell:
        "python -m zoorepro.download --manifest {input.manifest} --root data/full/{wildcards.model} "
        "--name {wildcards.entry} {params.tofu} > {log} 2>&1"
