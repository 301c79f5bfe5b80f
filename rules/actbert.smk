# ActBERT text-to-video retrieval on MSR-VTT with PaddleVideo (004_1d93f0d998946b96.txt).
# Code: zoorepro/actbert/ (PaddleVideo's configs in zoorepro/actbert/configs/), run by the paddle
# runner (zoorepro/runners/paddle.py); trace of document commands to rules: README.md, section
# "ActBERT: document steps -> rules". Sources, download and table are the shared rules.

ACTBERT = config["actbert"]
ACTBERT_FULL = "data/full/actbert"
ACTBERT_CONFIGS = "zoorepro/actbert/configs"


def actbert_device(wildcards):
    """PaddleVideo's device for a target (the document forces gpu; patches/ppvideo/04 makes it a choice)."""
    return runner_device("actbert", wildcards.target)


def actbert_test_inputs(wildcards):
    if wildcards.scale == "mini":
        return {"data": "data/mini/actbert/MANIFEST.json", "weights": "data/mini/actbert/ActBERT-mini.pdparams",
                "config": f"{ACTBERT_CONFIGS}/mini_msrvtt.yaml"}
    return {**full_data("actbert"), "config": f"{ACTBERT_CONFIGS}/actbert_msrvtt.yaml"}


def actbert_test_args(wildcards, input):
    """The document's -c/-w, with the data paths of this scale (the mini config names its own)."""
    if wildcards.scale == "mini":
        return f"-c {input.config} -w {input.weights}"
    return (f"-c {input.config} -w {ACTBERT_FULL}/ActBERT.pdparams --file-path {ACTBERT_FULL}/MSRVTT_JSFUSION_test.csv "
            f"--features-path {ACTBERT_FULL}/features/msrvtt_test.lmdb --vocab-dir {ACTBERT_FULL}/bert-base-uncased")


def actbert_pretrain_inputs(wildcards):
    if wildcards.scale == "mini":
        return {"data": "data/mini/actbert/MANIFEST.json", "bert": "data/mini/actbert/bert-mini.pdparams",
                "config": f"{ACTBERT_CONFIGS}/mini_pretrain.yaml"}
    return {**full_data("actbert"), "config": f"{ACTBERT_CONFIGS}/actbert.yaml"}


def actbert_pretrain_args(wildcards, input):
    if wildcards.scale == "mini":
        return f"-c {input.config} --device cpu --max-steps {ACTBERT['pretrain_steps']}"
    data = f"{ACTBERT_FULL}/howto100m"
    return (f"-c {input.config} --device gpu --vocab-dir {ACTBERT_FULL}/bert-base-uncased "
            f"--pretrained {ACTBERT_FULL}/bert-base-uncased.pdparams "
            f"-o DATASET.train.file_path={data}/actbert_train_data.npy "
            f"-o PIPELINE.train.transform.1.RandomCap.caption_path={data}/caption_train.json "
            f"-o PIPELINE.valid.transform.1.RandomCap.caption_path={data}/caption_val.json")


def actbert_table_inputs(wildcards):
    scale, target = scale_of(wildcards), wildcards.target
    base = f"work/{scale}/actbert/{target}"
    measurements = [f"{base}/test.measurements.json"]
    if scale == "mini":  # full-scale pretraining is a target of its own (days on 8 GPUs)
        measurements.append(f"work/{scale}/actbert/pretrain/loss.measurements.json")
    return {"measurements": measurements, "toolchain": f"{base}/metrics.json"}


TABLE_INPUTS["actbert"] = actbert_table_inputs


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
        seed=ACTBERT["mini"]["seed"],
        n_videos=ACTBERT["mini"]["n_videos"],
    shell:
        "python -m zoorepro.actbert.make_mini_data --out {params.out} --seed {params.seed} "
        "--n-videos {params.n_videos} > {log} 2>&1"


rule actbert_mini_model:
    # Mini scale: a tiny BertForMultiModalPreTraining (PaddleVideo's own class) with seeded random
    # weights in the .pdparams format `main.py -w` loads, and the BERT init the pretraining reads.
    input:
        sources="work/src/actbert/SOURCES.json",
        data="data/mini/actbert/MANIFEST.json",
        config=f"{ACTBERT_CONFIGS}/mini_msrvtt.yaml",
    output:
        weights="data/mini/actbert/ActBERT-mini.pdparams",
        bert="data/mini/actbert/bert-mini.pdparams",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/mini/actbert/make_mini_model.log",
    params:
        seed=ACTBERT["mini"]["seed"],
    shell:
        "python -m zoorepro.actbert.make_mini_model --config {input.config} --out {output.weights} "
        "--bert-out {output.bert} --seed {params.seed} --src work/src/actbert > {log} 2>&1"


rule actbert_test:
    # Document: python3.7 main.py --test -c configs/multimodal/actbert/actbert_msrvtt.yaml -w Actbert.pdparams
    # Patched: device from the target's paddle runner (the document forces a GPU), local vocab,
    # restricted lmdb unpickling; metrics parsed from the final log line AND recomputed from the score matrix.
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
        seed=ACTBERT["seed"],
    threads: workflow.cores
    shell:
        "python -m zoorepro.actbert.test {params.args} --src work/src/actbert --device {params.device} "
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
        seed=ACTBERT["seed"],
    threads: workflow.cores
    shell:
        "python -m zoorepro.actbert.pretrain {params.args} --src work/src/actbert --seed {params.seed} "
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
        "python -m zoorepro.actbert.loss_measurements --loss {input.loss} --out {output.measurements} > {log} 2>&1"
