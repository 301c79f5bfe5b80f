# ClipBERT finetuned and evaluated on ANetQA (003_1ad379d98147290d.txt). Code: zoorepro/clipbert/
# (the project's own ClipBERT, steps named as the document names them), launched by the
# transformers runner (torch; zoorepro/runners/transformers.py); trace of document commands to rules:
# README.md, "ClipBERT: document steps -> rules". Downloads and the table are the shared rules.

CLIPBERT = config["clipbert"]
IN_CLIPBERT = INPUTS["clipbert"]


# Bookkeeping steps (small JSON/CSV in and out): under SLURM they run in Snakemake's own process
# on the submitting host, not as jobs (a job costs two Snakemake starts and a scheduling round).
localrules:
    clipbert_aux_csv, clipbert_aux_jsonl, clipbert_make_config, clipbert_eval_res,

rule clipbert_mini_data:
    # Mini scale: generated ActivityNet-style videos, ANetQA's QA and meta files with the taxonomy,
    # ans2label, a WordPiece vocab, a tiny ClipBERT (ClipBERT's key names) as the e2e pretrained
    # checkpoint, and a release in ClipBERT's layout whose val answers are planted
    # (zoorepro/clipbert/make_mini_data.py). Nothing is downloaded.
    output:
        manifest="data/mini/clipbert/MANIFEST.json",
        planted="data/mini/clipbert/planted_claims.yaml",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/mini/clipbert/make_mini_data.log",
    params:
        out=output_dir,
        seed=CLIPBERT["mini"]["seed"],
        videos=CLIPBERT["mini"]["videos"],
        per_video=CLIPBERT["mini"]["per_video"],
        size=CLIPBERT["frames"]["size"]["mini"],
        sample_seed=CLIPBERT["frames"]["seed"],
        finetune=CLIPBERT["finetune"]["mini"],
    shell:
        "python -m zoorepro.clipbert.make_mini_data --out {params.out} --seed {params.seed} "
        "--videos {params.videos[train]} {params.videos[val]} {params.videos[test]} --per-video {params.per_video} "
        "--frame-size {params.size} --sample-seed {params.sample_seed} "
        "--max-img-size {params.finetune[max_img_size]} --max-txt-len {params.finetune[max_txt_len]} > {log} 2>&1"


rule clipbert_shape_data:
    # Shape scale: what the full-scale steps read, in full's layout, at the real sizes: generated
    # ActivityNet-size videos with ANetQA's QA and meta files, ANetQA's 12,911-answer list, a
    # bert-base-uncased-size vocab, and the full-size ClipBERT's e2e pretrained checkpoint with
    # random weights (zoorepro/clipbert/make_shape.py). Throughput only; nothing is downloaded.
    output:
        manifest="data/shape/clipbert/MANIFEST.json",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/shape/clipbert/make_shape.log",
    params:
        out=output_dir,
        shape=CLIPBERT["shape"],
    shell:
        "python -m zoorepro.clipbert.make_shape --out {params.out} --seed {params.shape[seed]} "
        "--videos {params.shape[videos][train]} {params.shape[videos][val]} {params.shape[videos][test]} "
        "--per-video {params.shape[per_video]} --video-frames {params.shape[video_frames]} "
        "--video-size {params.shape[video_size][0]} {params.shape[video_size][1]} > {log} 2>&1"


rule clipbert_check_anetqa:
    # Full scale, not a document step: the ANetQA release (QA files and ActivityNet videos from the
    # ANetQA site, no fixed URL) unpacked by the user into data/full/clipbert/dataset/; checked, its
    # QA and meta files hashed. Missing: one error naming what, where to get it, and the mini table.
    input:
        IN_CLIPBERT.anetqa_files,
    output:
        record="work/full/clipbert/prep/anetqa_release.json",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/full/clipbert/check_anetqa.log",
    shell:
        "python -m zoorepro.clipbert.check_anetqa --dataset data/full/clipbert/dataset --out {output.record} "
        "> {log} 2>&1"


rule clipbert_select_videos:
    # Not a document step: the ANetQA QA and meta files the run uses, every video they name checked
    # first; at full scale optionally the first clipbert.video_subset videos of each split.
    input:
        unpack(IN_CLIPBERT.data),
    output:
        dataset=directory("work/{scale}/clipbert/prep/dataset"),
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{scale}/clipbert/select_videos.log",
    params:
        dataset=IN_CLIPBERT.path("dataset"),
        videos=IN_CLIPBERT.path("videos"),
        subset=IN_CLIPBERT.subset_arg,
    shell:
        "python -m zoorepro.clipbert.select_videos --dataset {params.dataset} --video_dir {params.videos} "
        "--out_dir {output.dataset} {params.subset} > {log} 2>&1"


rule clipbert_sample_imgs_clipbert:
    # Document: python sample_imgs_clipbert.py. What its text and ClipBERT's loader expect (5 sets
    # of 4x2 random frames per train video, 16 uniform frames per val/test video), seeded, as
    # .npy uint8 arrays (not pickles). Upstream's script samples 9 sets of 3 and stops on a NameError.
    input:
        dataset="work/{scale}/clipbert/prep/dataset",
    output:
        img=directory("work/{scale}/clipbert/prep/img"),
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{scale}/clipbert/sample_imgs_clipbert.log",
    params:
        videos=IN_CLIPBERT.path("videos"),
        size=IN_CLIPBERT.frame_size,
        seed=CLIPBERT["frames"]["seed"],
    resources:
        mem_mb=lambda wildcards, input: data_mem_mb(input, IN_CLIPBERT.path("videos")(wildcards)),
    threads: all_cores
    shell:
        "python -m zoorepro.clipbert.sample_imgs_clipbert --video_dir {params.videos} --meta_dir {input.dataset}/meta "
        "--out_dir {output.img} --size {params.size} --seed {params.seed} > {log} 2>&1"


rule clipbert_aux_csv:
    # Document: python aux_csv.py (data_train_val/train/val/test.csv, pandas' index column).
    # Fixed: the test questions come from q_test.json, the name the dataset ships.
    input:
        dataset="work/{scale}/clipbert/prep/dataset",
    output:
        csv=directory("work/{scale}/clipbert/prep/csv"),
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{scale}/clipbert/aux_csv.log",
    shell:
        "python -m zoorepro.clipbert.aux_csv --qa_dir {input.dataset}/qa --meta_dir {input.dataset}/meta "
        "--out_dir {output.csv} > {log} 2>&1"


rule clipbert_aux_jsonl:
    # Document: python aux_jsonl.py (data_train/val/test.jsonl, records orient, test answers null).
    input:
        csv="work/{scale}/clipbert/prep/csv",
    output:
        txt=directory("work/{scale}/clipbert/prep/txt"),
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{scale}/clipbert/aux_jsonl.log",
    shell:
        "python -m zoorepro.clipbert.aux_jsonl --csv_dir {input.csv} --out_dir {output.txt} > {log} 2>&1"


rule clipbert_make_config:
    # The document's --config anetqa_frameqa_base_resnet50.json: its hyperparameters from params
    # clipbert.finetune.<scale>, the paths of this run's data (upstream: Docker mount points).
    input:
        unpack(IN_CLIPBERT.data),
    output:
        config="work/{scale}/clipbert/prep/anetqa_frameqa_base_resnet50.json",
        model_config="work/{scale}/clipbert/prep/model_config.json",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{scale}/clipbert/make_config.log",
    params:
        hyper=IN_CLIPBERT.hyper,
        prep="work/{scale}/clipbert/prep",
        ans2label=IN_CLIPBERT.path("ans2label"),
        tokenizer=IN_CLIPBERT.path("tokenizer"),
        model_config=IN_CLIPBERT.path("model_config"),
        e2e=IN_CLIPBERT.e2e_arg,
    shell:
        "python -m zoorepro.clipbert.make_config --hyper {params.hyper:q} --train_txt_db {params.prep}/txt/data_train.jsonl "
        "--val_txt_db {params.prep}/txt/data_val.jsonl --img_db {params.prep}/img --ans2label_path {params.ans2label} "
        "--tokenizer_dir {params.tokenizer} --model_config {params.model_config} {params.e2e} --out {output.config} "
        "> {log} 2>&1"


rule clipbert_run_video_qa:
    # Document: horovodrun -np 4 python src/tasks/run_video_qa.py --config anetqa_frameqa_base_resnet50.json
    #   --output_dir ./result. N torchrun processes (clipbert.nproc; gloo on cpu, nccl on cuda), ClipBERT's
    # layout (ckpt/model_step_N.pt, log/args.json, log/model_config.json, val_N.json). Fixed openly:
    # validation gathered over ranks, the sampler's padding duplicates dropped, valid_steps >= 1.
    # Added: % of the target's peak (FLOPs counted by zoorepro/clipbert/compute.py).
    input:
        unpack(IN_CLIPBERT.peak),
        config="work/{scale}/clipbert/prep/anetqa_frameqa_base_resnet50.json",
        model_config="work/{scale}/clipbert/prep/model_config.json",
        img="work/{scale}/clipbert/prep/img",
        txt="work/{scale}/clipbert/prep/txt",
    output:
        run=directory("work/{scale}/clipbert/{target}/finetune"),
        measurements="work/{scale}/clipbert/{target}/finetune.measurements.json",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{scale}/clipbert/{target}/run_video_qa.log",
    params:
        launch=IN_CLIPBERT.launch,
        device=IN_CLIPBERT.device,
        peak=IN_CLIPBERT.peak_arg,
        throughput_only=IN_CLIPBERT.throughput_only_arg,
    resources:
        slurm_partition=chip_partition,
        gres=chip_gres,
    threads: all_cores
    shell:
        "{params.launch} --config {input.config} --output_dir {output.run} --device {params.device} "
        "--measurements {output.measurements} {params.peak} {params.throughput_only} > {log} 2>&1"


rule clipbert_inference:
    # Document: horovodrun -np 4 python src/tasks/run_video_qa.py --do_inference 1 --inference_split val
    #   --inference_model_step $STEP --inference_txt_db data_test.jsonl --inference_batch_size 64
    #   --inference_n_clips 16. Fixed openly: the val split is answered from data_val.jsonl (the document
    # pairs --inference_split val with the test file, whose answers are empty: that line as printed is
    # clipbert_inference_test); results in ClipBERT's
    # folder layout, items {question_id: <qa_id>, answer: <string>}; mini reads the planted release.
    input:
        unpack(IN_CLIPBERT.checkpoint),
        unpack(IN_CLIPBERT.peak),
        config="work/{scale}/clipbert/prep/anetqa_frameqa_base_resnet50.json",
        img="work/{scale}/clipbert/prep/img",
        txt="work/{scale}/clipbert/prep/txt",
    output:
        result=directory("work/{scale}/clipbert/{target}/result"),
        measurements="work/{scale}/clipbert/{target}/inference.measurements.json",
        toolchain="work/{scale}/clipbert/{target}/toolchain.json",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{scale}/clipbert/{target}/inference.log",
    params:
        launch=IN_CLIPBERT.launch,
        device=IN_CLIPBERT.device,
        checkpoint=IN_CLIPBERT.checkpoint_dir,
        inference=CLIPBERT["inference"],
        batch_size=IN_CLIPBERT.inference_batch_size,
        peak=IN_CLIPBERT.peak_arg,
    resources:
        slurm_partition=chip_partition,
        gres=chip_gres,
    threads: all_cores
    shell:
        "{params.launch} --config {input.config} --output_dir {output.result} --checkpoint_dir {params.checkpoint} "
        "--device {params.device} --do_inference 1 --inference_split {params.inference[split]} "
        "--inference_model_step {params.inference[model_step]} --inference_txt_db {input.txt}/data_val.jsonl "
        "--inference_img_db {input.img} --inference_batch_size {params.batch_size} "
        "--inference_n_clips {params.inference[n_clips]} --measurements {output.measurements} {params.peak} "
        "--toolchain {output.toolchain} --target {wildcards.target} > {log} 2>&1"


rule clipbert_inference_test:
    # The document's inference line as printed, on the test split (--inference_txt_db data_test.jsonl):
    # results_all.json is the file ANetQA's evaluation server scores (the test answers are not
    # published), so the table gets its timings only; the claims' test-tiny/test-dev/test accuracies
    # come from that server.
    input:
        unpack(IN_CLIPBERT.checkpoint),
        unpack(IN_CLIPBERT.peak),
        config="work/{scale}/clipbert/prep/anetqa_frameqa_base_resnet50.json",
        img="work/{scale}/clipbert/prep/img",
        txt="work/{scale}/clipbert/prep/txt",
    output:
        result=directory("work/{scale}/clipbert/{target}/result_test"),
        measurements="work/{scale}/clipbert/{target}/inference_test.measurements.json",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{scale}/clipbert/{target}/inference_test.log",
    params:
        launch=IN_CLIPBERT.launch,
        device=IN_CLIPBERT.device,
        checkpoint=IN_CLIPBERT.checkpoint_dir,
        inference=CLIPBERT["inference"],
        batch_size=IN_CLIPBERT.inference_batch_size,
        peak=IN_CLIPBERT.peak_arg,
    resources:
        slurm_partition=chip_partition,
        gres=chip_gres,
    threads: all_cores
    shell:
        "{params.launch} --config {input.config} --output_dir {output.result} --checkpoint_dir {params.checkpoint} "
        "--device {params.device} --do_inference 1 --inference_split test "
        "--inference_model_step {params.inference[model_step]} --inference_txt_db {input.txt}/data_test.jsonl "
        "--inference_img_db {input.img} --inference_batch_size {params.batch_size} "
        "--inference_n_clips {params.inference[n_clips]} --measurements {output.measurements} {params.peak} "
        "> {log} 2>&1"


rule clipbert_eval_res:
    # Document: python eval_res.py (per question structure, semantics, reasoning skill and answer type,
    # then overall). Fixed openly: the results file is an argument (upstream: an empty res_path to edit).
    input:
        result="work/{scale}/clipbert/{target}/result",
        dataset="work/{scale}/clipbert/prep/dataset",
    output:
        measurements="work/{scale}/clipbert/{target}/eval_res.measurements.json",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{scale}/clipbert/{target}/eval_res.log",
    params:
        precision=IN_CLIPBERT.precision,
    shell:
        "python -m zoorepro.clipbert.eval_res --qa_val {input.dataset}/qa/qa_val.json --res_path {input.result} "
        "--precision {params.precision:q} --out {output.measurements} > {log} 2>&1"
