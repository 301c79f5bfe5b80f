# The target's peak compute, for the "% of peak" rows of a model's perf step (every model that asks
# for it): this CPU measured by a matmul micro-benchmark (with the machine to itself), a chip's from
# zoorepro/peaks.yaml (data with sources), this machine's GPU by name. Beside the model's other
# outputs for the target, so that its DVC stage records it.


rule peak:
    input:
        peaks="zoorepro/peaks.yaml",
    output:
        "work/{scale}/{model}/{target}/peak.json",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{scale}/{model}/{target}/peak.log",
    params:
        hardware=lambda wildcards: target_settings(config, wildcards.target)["hardware"],
        precision=peak_precision,
    resources:
        slurm_partition=chip_partition,
        gres=chip_gres,
    threads: all_cores
    shell:
        "python -m zoorepro.peaks --hardware {params.hardware} --precision {params.precision} --json {output} "
        "> {log} 2>&1"
