# Result tables: measurements joined with the claims registry (claims/claims.yaml), verdicts from
# the tolerances in params.yaml, provenance and DVC metrics beside each table.


rule vilbert_table:
    input:
        unpack(vilbert_table_inputs),
        claims="claims/claims.yaml",
    output:
        csv="{resdir}/vilbert_{target}.csv",
        provenance="{resdir}/vilbert_{target}.provenance.json",
        metrics="{resdir}/vilbert_{target}.metrics.json",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{resdir}/vilbert_{target}.table.log",
    params:
        measurements=vilbert_measurement_specs,
    shell:
        "python -m zoorepro table --model vilbert --target {wildcards.target} --measurements {params.measurements} "
        "--toolchain {input.toolchain} --out {output.csv} > {log} 2>&1"


rule videobert_table:
    input:
        unpack(videobert_table_inputs),
        claims="claims/claims.yaml",
    output:
        csv="{resdir}/videobert_{target}.csv",
        provenance="{resdir}/videobert_{target}.provenance.json",
        metrics="{resdir}/videobert_{target}.metrics.json",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{resdir}/videobert_{target}.table.log",
    params:
        measurements=videobert_measurement_specs,
    shell:
        "python -m zoorepro table --model videobert --target {wildcards.target} --measurements {params.measurements} "
        "--toolchain {input.toolchain} --out {output.csv} > {log} 2>&1"


rule actbert_table:
    input:
        unpack(actbert_table_inputs),
        claims="claims/claims.yaml",
    output:
        csv="{resdir}/actbert_{target}.csv",
        provenance="{resdir}/actbert_{target}.provenance.json",
        metrics="{resdir}/actbert_{target}.metrics.json",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{resdir}/actbert_{target}.table.log",
    params:
        measurements=actbert_measurement_specs,
    shell:
        "python -m zoorepro table --model actbert --target {wildcards.target} --measurements {params.measurements} "
        "--toolchain {input.toolchain} --out {output.csv} > {log} 2>&1"
