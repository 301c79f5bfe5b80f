# ActBERT text-to-video retrieval on MSR-VTT with PaddleVideo (004_1d93f0d998946b96.txt).
# Code: zoorepro/actbert/ (PaddleVideo's configs in configs/, its input functions in inputs.py), run
# by the paddle runner (zoorepro/runners/paddle.py); trace of document commands to rules: README.md,
# section "ActBERT: document steps -> rules". Sources, download and table are the shared rules.

ACTBERT = config["actbert"]
IN_ACTBERT = INPUTS["actbert"]


# Bookkeeping steps (small JSON/CSV in and out): under SLURM they run in Snakemake's own process
# on the submitting host, not as jobs (a job costs two Snakemake starts and a scheduling round).
localrules:
    actbert_pretrain_measurements,

rule actbert_mini_data:
    # Mini scale: MSR-VTT-format lmdb feature records, a local WordPiece vocab, HowTo100M-format
    # pretraining inputs, then the tiny BertForMultiModalPreTraining (PaddleVideo's own class,
    # seeded random weights, its poolers shaped) in the .pdparams format `main.py -w` loads with
    # the BERT init the pretraining reads, run once by PaddleVideo on candidate captions to write
    # the caption csv with planted ranks and their expected metrics (zoorepro/actbert/plant.py).
    # Nothing is downloaded.
    input:
        sources="work/src/actbert/SOURCES.json",
        config="zoorepro/actbert/configs/mini_msrvtt.yaml",
    output:
        manifest="data/mini/actbert/MANIFEST.json",
        weights="data/mini/actbert/ActBERT-mini.pdparams",
        bert="data/mini/actbert/bert-mini.pdparams",
        planted="data/mini/actbert/planted_claims.yaml",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/mini/actbert/make_mini_data.log",
    params:
        out=output_dir,
        seed=ACTBERT["mini"]["seed"],
        n_videos=ACTBERT["mini"]["n_videos"],
        n_candidates=ACTBERT["mini"]["n_candidates"],
        top1_fraction=ACTBERT["mini"]["top1_fraction"],
        min_margin=ACTBERT["mini"]["min_margin"],
    shell:
        "python -m zoorepro.actbert.make_mini_data --out {params.out} --seed {params.seed} "
        "--n-videos {params.n_videos} --n-candidates {params.n_candidates} --top1-fraction {params.top1_fraction} "
        "--min-margin {params.min_margin} --src work/src/actbert --config {input.config} > {log} 2>&1"


rule actbert_shape_data:
    # Shape scale: the released model's architecture at its real sizes (the document's test config)
    # with PaddleVideo's random init, as the .pdparams `main.py --test -w` loads, and MSR-VTT test
    # inputs of the real shapes and dtypes (caption csv, feature lmdb, a vocabulary of
    # bert-base-uncased's size). Throughput only; nothing is downloaded.
    input:
        sources="work/src/actbert/SOURCES.json",
        config="zoorepro/actbert/configs/actbert_msrvtt.yaml",
    output:
        manifest="data/shape/actbert/MANIFEST.json",
        weights="data/shape/actbert/ActBERT-shape.pdparams",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/shape/actbert/make_shape.log",
    params:
        out=output_dir,
        seed=ACTBERT["shape"]["seed"],
        n_videos=ACTBERT["shape"]["n_videos"],
    shell:
        "python -m zoorepro.actbert.make_shape --out {params.out} --src work/src/actbert --config {input.config} "
        "--seed {params.seed} --n-videos {params.n_videos} > {log} 2>&1"


rule actbert_flops:
    # FLOPs of one caption's test forward (fixed + per video), counted while PaddleVideo's model
    # runs it at the test's shapes (random weights: the count depends on shapes only).
    input:
        sources="work/src/actbert/SOURCES.json",
        config=IN_ACTBERT.test_config,
    output:
        "work/{scale}/actbert/flops.json",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{scale}/actbert/flops.log",
    shell:
        "python -m zoorepro.actbert.count_flops --config {input.config} --src work/src/actbert --out {output} "
        "> {log} 2>&1"


rule actbert_test:
    # Document: python3.7 main.py --test -c configs/multimodal/actbert/actbert_msrvtt.yaml -w Actbert.pdparams
    # Patched: device from the target's paddle runner (the document forces a GPU), local vocab,
    # restricted lmdb unpickling; metrics parsed from the final log line AND recomputed from the score matrix.
    # Added: % of the target's peak from the counted FLOPs; at shape scale the first captions only
    # (each against all videos) and no accuracy rows.
    input:
        unpack(IN_ACTBERT.test_inputs),
        sources="work/src/actbert/SOURCES.json",
        flops="work/{scale}/actbert/flops.json",
        peak="work/{scale}/actbert/{target}/peak.json",
    output:
        work=directory("work/{scale}/actbert/{target}/test"),
        metrics="work/{scale}/actbert/{target}/metrics.json",
        measurements="work/{scale}/actbert/{target}/test.measurements.json",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{scale}/actbert/{target}/test.log",
    params:
        weights=IN_ACTBERT.path("weights"),
        captions=IN_ACTBERT.path("captions"),
        features=IN_ACTBERT.path("features"),
        vocab=IN_ACTBERT.path("vocab"),
        device=IN_ACTBERT.device,
        seed=ACTBERT["seed"],
        scale_args=IN_ACTBERT.test_args,
    resources:
        slurm_partition=chip_partition,
        gres=chip_gres,
    threads: all_cores
    shell:
        "python -m zoorepro.actbert.test -c {input.config} -w {params.weights} --file-path {params.captions} "
        "--features-path {params.features} --vocab-dir {params.vocab} --src work/src/actbert "
        "--device {params.device} --seed {params.seed} --work-dir {output.work} --out {output.metrics} "
        "--measurements {output.measurements} --flops {input.flops} --peak {input.peak} {params.scale_args} "
        "> {log} 2>&1"


rule actbert_pretrain:
    # Document: python3.7 -B -m paddle.distributed.launch --gpus="0,1,2,3,4,5,6,7" --log_dir=log_actbert
    #   main.py --validate -c configs/multimodal/actbert/actbert.yaml (HowTo100M), and its AMP variant:
    #   FLAGS_conv_workspace_size_limit=800 FLAGS_cudnn_exhaustive_search=1
    #   FLAGS_cudnn_batchnorm_spatial_persistent=1 ... main.py --amp --validate ...
    # The same launcher: devices and log_dir from params `actbert.pretrain.<scale>` (full: the
    # document's 8 GPUs on cuda, days; mini: 2 cpu processes, `actbert.pretrain_steps` steps, in the
    # mini table); `actbert.amp` adds the FLAGS and --amp (refused on cpu). main.py is
    # zoorepro/actbert/main.py (the launcher runs a script, not a module) running
    # zoorepro.actbert.pretrain in each process; the text BERT init (the document's
    # bert-base-uncased.pdparams, MODEL.backbone.pretrained) is read by the restricted loader.
    input:
        unpack(IN_ACTBERT.pretrain_inputs),
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
        amp_env=IN_ACTBERT.amp_env,
        devices=IN_ACTBERT.launch_devices,
        log_dir=IN_ACTBERT.launch_log_dir,
        amp=IN_ACTBERT.amp_arg,
        device=IN_ACTBERT.pretrain_device,
        steps=IN_ACTBERT.pretrain_steps,
        bert=IN_ACTBERT.path("bert"),
        vocab=IN_ACTBERT.path("vocab"),
        train_data=IN_ACTBERT.path("train_data"),
        caption_train=IN_ACTBERT.path("caption_train"),
        caption_val=IN_ACTBERT.path("caption_val"),
        seed=ACTBERT["seed"],
    resources:
        mem_mb=lambda wildcards, input: data_mem_mb(input, f"data/{wildcards.scale}/actbert"),
    threads: all_cores
    shell:
        "{params.amp_env}python -B -m paddle.distributed.launch {params.devices} --log_dir={params.log_dir} "
        "zoorepro/actbert/main.py {params.amp}--validate -c {input.config} "
        "--device {params.device} --max-steps {params.steps} --pretrained {params.bert} --vocab-dir {params.vocab} "
        "--train-data {params.train_data} --caption-train {params.caption_train} --caption-val {params.caption_val} "
        "--src work/src/actbert --seed {params.seed} --work-dir {output.work} --loss-curve {output.loss} "
        "--out {output.weights} > {log} 2>&1"


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
