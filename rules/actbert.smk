# ActBERT text-to-video retrieval on MSR-VTT with PaddleVideo (004_1d93f0d998946b96.txt).
# Trace of document commands to rules: README.md, section "ActBERT: document steps -> rules".


rule actbert_sources:
    # Document: `python -m pip install paddlenlp lmdb` + PaddleVideo's code. Here: ppvideo 2.3.1
    # (PaddleVideo's ActBERT unchanged) copied from the venv and patched with patches/ppvideo/.
    input:
        patches=ACTBERT_PATCHES,
    output:
        manifest="work/src/actbert/SOURCES.json",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/actbert/sources.log",
    params:
        dest=output_dir,
    shell:
        "python scripts/actbert/sources.py --dest {params.dest} --patches patches > {log} 2>&1"


rule actbert_download:
    # Document: wget ActBERT.pdparams, MSRVTT_JSFUSION_test.csv, msrvtt_test.lmdb.tar (+ tar xf),
    # bert-base-uncased.pdparams and the HowTo100M features; the tokenizer vocab paddlenlp would
    # fetch at run time. Checksummed where a checksum exists, resumable, safe extraction.
    input:
        manifest="manifests/actbert.yaml",
    output:
        done="data/full/actbert/.done/{entry}",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/full/actbert/download_{entry}.log",
    params:
        tofu=download_tofu_arg,
    shell:
        "python scripts/download.py --manifest {input.manifest} --root data/full/actbert "
        "--name {wildcards.entry} {params.tofu} > {log} 2>&1"


rule actbert_mini_data:
    # Mini scale: MSR-VTT-format csv + lmdb feature records, a local WordPiece vocab and
    # HowTo100M-format pretraining inputs, generated. Nothing is downloaded.
    output:
        manifest="data/mini/actbert/MANIFEST.json",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/mini/actbert/make_mini_data.log",
    params:
        out=output_dir,
        seed=config["actbert"]["mini"]["seed"],
        n_videos=config["actbert"]["mini"]["n_videos"],
    shell:
        "python scripts/actbert/make_mini_data.py --out {params.out} --seed {params.seed} "
        "--n-videos {params.n_videos} > {log} 2>&1"


rule actbert_mini_model:
    # Mini scale: a tiny BertForMultiModalPreTraining (PaddleVideo's own class) with seeded random
    # weights in the .pdparams format `main.py -w` loads, and the BERT init the pretraining reads.
    input:
        sources="work/src/actbert/SOURCES.json",
        data="data/mini/actbert/MANIFEST.json",
        config="configs/actbert/mini_msrvtt.yaml",
    output:
        weights="data/mini/actbert/ActBERT-mini.pdparams",
        bert="data/mini/actbert/bert-mini.pdparams",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/mini/actbert/make_mini_model.log",
    params:
        seed=config["actbert"]["mini"]["seed"],
    shell:
        "python scripts/actbert/make_mini_model.py --config {input.config} --out {output.weights} "
        "--bert-out {output.bert} --seed {params.seed} --src work/src/actbert > {log} 2>&1"


rule actbert_test:
    # Document: python3.7 main.py --test -c configs/multimodal/actbert/actbert_msrvtt.yaml -w Actbert.pdparams
    # Patched: device from the target (the document forces a GPU), local vocab, restricted lmdb
    # unpickling; metrics parsed from the final log line AND recomputed from the score matrix.
    input:
        unpack(actbert_test_inputs),
        sources="work/src/actbert/SOURCES.json",
    output:
        work=directory("work/{scale}/actbert/{target}/test"),
        metrics="work/{scale}/actbert/{target}/metrics.json",
        measurements="work/{scale}/actbert/{target}/test.measurements.json",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{scale}/actbert/{target}/test.log",
    params:
        args=actbert_test_args,
        device=actbert_device,
        seed=config["actbert"]["seed"],
    threads: workflow.cores
    shell:
        "python scripts/actbert/test.py {params.args} --src work/src/actbert --device {params.device} "
        "--seed {params.seed} --work-dir {output.work} --out {output.metrics} "
        "--measurements {output.measurements} > {log} 2>&1"


rule actbert_pretrain:
    # Document: python3.7 -B -m paddle.distributed.launch --gpus="0,...,7" main.py --validate
    #   -c configs/multimodal/actbert/actbert.yaml (HowTo100M). Full scale: a target of its own
    # (days on 8 GPUs); mini scale: `actbert.pretrain_steps` steps on the cpu, in the mini table.
    input:
        unpack(actbert_pretrain_inputs),
        sources="work/src/actbert/SOURCES.json",
    output:
        work=directory("work/{scale}/actbert/pretrain/run"),
        loss="work/{scale}/actbert/pretrain/loss.json",
        weights="work/{scale}/actbert/pretrain/ActBERT-pretrained.pdparams",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{scale}/actbert/pretrain.log",
    params:
        args=actbert_pretrain_args,
        seed=config["actbert"]["seed"],
    threads: workflow.cores
    shell:
        "python scripts/actbert/pretrain.py {params.args} --src work/src/actbert --seed {params.seed} "
        "--work-dir {output.work} --loss-curve {output.loss} --out {output.weights} > {log} 2>&1"


rule actbert_pretrain_measurements:
    # The mini pretraining run as table rows (first and last loss): the code path ran for real.
    input:
        loss="work/{scale}/actbert/pretrain/loss.json",
    output:
        measurements="work/{scale}/actbert/pretrain/loss.measurements.json",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{scale}/actbert/pretrain_measurements.log",
    shell:
        "python scripts/actbert/loss_measurements.py --loss {input.loss} --out {output.measurements} > {log} 2>&1"
