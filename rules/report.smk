# What people look at, for every table: its figures and HTML tables (zoorepro/figures.py), marked
# for Snakemake's report (`make report` = `snakemake --report`), and its curves as CSV for
# `dvc plots` (dvc.yaml's plots section, zoorepro/dvcgen.py).


# Bookkeeping steps (small JSON/CSV in and out): under SLURM they run in Snakemake's own process
# on the submitting host, not as jobs (a job costs two Snakemake starts and a scheduling round).
localrules:
    figures,

rule figures:
    input:
        table="{resdir}/{model}_{target}.csv",
        provenance="{resdir}/{model}_{target}.provenance.json",
    output:
        report(
            directory("{resdir}/report/{model}_{target}"),
            patterns=["{figure}.svg", "{figure}.html"],
            caption="../report/figures.rst",
            category="{model}",
            subcategory="{target} ({resdir})",
            labels={"table": "{resdir}/{model}_{target}.csv", "figure": "{figure}"},
        ),
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{resdir}/{model}_{target}.figures.log",
    shell:
        "python -m zoorepro.figures --table {input.table} --out {output} > {log} 2>&1"
