# The compare step, for every model: a target's raw outputs against the reference params.yaml
# names (`<model>.compare`): max abs diff and minimum cosine per output, plus harness statistics.


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
        args=compare_args,
        precision=precision,
    shell:
        "python -m zoorepro.steps.compare --reference {input.reference} --outputs {input.outputs} {params.args} "
        "--precision {params.precision} --measurements {output.measurements} > {log} 2>&1"
