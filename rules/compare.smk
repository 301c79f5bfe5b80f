# The compare step, for every model: a target's raw outputs against the reference params.yaml
# names (`<model>.compare`): max abs diff and minimum cosine per output, plus harness statistics.


# Bookkeeping steps (small JSON/CSV in and out): under SLURM they run in Snakemake's own process
# on the submitting host, not as jobs (a job costs two Snakemake starts and a scheduling round).
localrules:
    compare,

rule compare:
    input:
        reference=compare_reference,
        outputs=compare_outputs,
    output:
        measurements="work/{scale}/{model}/{target}/compare.measurements.json",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{scale}/{model}/{target}/compare.log",
    params:
        names=lambda wildcards: compare_settings(wildcards)["output_names"],
        statistics=lambda wildcards: compare_settings(wildcards).get("statistics", []),
        label=lambda wildcards: compare_settings(wildcards)["label"],
        rows=lambda wildcards: compare_settings(wildcards).get("rows", "rows"),
        bs=compare_batch_size,
        precision=precision,
    shell:
        "python -m zoorepro.steps.compare --reference {input.reference} --outputs {input.outputs} "
        "--output-names {params.names} --statistics {params.statistics} --label {params.label:q} "
        "--rows {params.rows} --batch-size {params.bs} --precision {params.precision} "
        "--measurements {output.measurements} > {log} 2>&1"
