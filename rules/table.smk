# Result tables, for every model: its measurements joined with the claims registry
# (claims/claims.yaml) and, at mini scale, the planted claims of its mini generator
# (data/mini/<model>/planted_claims.yaml); verdicts from the tolerances in params.yaml, provenance
# and DVC metrics beside each table. Which measurement files a model's table joins: rules/<model>.smk.


# Bookkeeping steps (small JSON/CSV in and out): under SLURM they run in Snakemake's own process
# on the submitting host, not as jobs (a job costs two Snakemake starts and a scheduling round).
localrules:
    table,

rule table:
    input:
        unpack(table_inputs),
        claims="claims/claims.yaml",
        # what the throughput claims' implied % of peak is computed from (zoorepro/plausibility.py)
        flops="claims/flops.yaml",
        peaks="zoorepro/peaks.yaml",
    output:
        csv="{resdir}/{model}_{target}.csv",
        provenance="{resdir}/{model}_{target}.provenance.json",
        metrics="{resdir}/{model}_{target}.metrics.json",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{resdir}/{model}_{target}.table.log",
    params:
        planted=planted_arg,
    shell:
        "python -m zoorepro table --model {wildcards.model} --target {wildcards.target} "
        "--measurements {input.measurements} --toolchain {input.toolchain} {params.planted} "
        "--out {output.csv} > {log} 2>&1"
