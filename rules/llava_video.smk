# LLaVA-NeXT-Video (7B, 7B-32K, 7B-DPO, 34B, 34B-DPO) on Video-Bench: MindIE-LLM on an Ascend NPU
# against transformers on a GPU (001_c4605a925f123fda.txt). Code: zoorepro/llava_video/ (steps
# named as the document names them), runners zoorepro/runners/{transformers,mindie}.py; trace of
# document commands to rules: README.md, "LLaVA-NeXT-Video: document steps -> rules". Downloads and
# the table are the shared rules.

LLAVA = config["llava_video"]
IN_LLAVA = INPUTS["llava_video"]


wildcard_constraints:
    ckpt="|".join(LLAVA["checkpoints"]),
    runner="transformers|mindie",


# Bookkeeping steps (small JSON/CSV in and out): under SLURM they run in Snakemake's own process
# on the submitting host, not as jobs (a job costs two Snakemake starts and a scheduling round).
localrules:
    llava_video_score, llava_video_precision_test,

rule llava_video_mini_data:
    # Mini scale: a Video-Bench tree in the real formats (13 Eval_QA/<Subset>_QA_new.json, generated
    # .mp4 videos and MSVD's .avi, ANSWER.json), one tiny random-weight LlavaNextVideo checkpoint per
    # document checkpoint in the Hugging Face layout (the three chat-template families), and
    # ANSWER.json planted against the eager model's answers (zoorepro/llava_video/plant.py).
    output:
        manifest="data/mini/llava_video/MANIFEST.json",
        planted="data/mini/llava_video/planted_claims.yaml",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/mini/llava_video/make_mini_data.log",
    params:
        out=output_dir,
        seed=LLAVA["mini"]["seed"],
        per_subset=LLAVA["mini"]["per_subset"],
        max_new_tokens=LLAVA["max_new_tokens"]["mini"],
        frames=LLAVA["frames"],
    shell:
        "python -m zoorepro.llava_video.make_mini_data --out {params.out} --seed {params.seed} "
        "--per-subset {params.per_subset} --max-new-tokens {params.max_new_tokens} --frames {params.frames} "
        "> {log} 2>&1"


rule llava_video_shape_data:
    # Shape scale: the real architecture at its real sizes (count_flops.full_size_config) with
    # random bfloat16 weights, as a llava-hf checkpoint folder (sharded safetensors, processor,
    # tokenizer), and a Video-Bench tree of synthetic videos (one question a subset). Nothing is
    # downloaded; a checkpoint larger than this host's memory is refused (the 34B).
    output:
        manifest="data/shape/llava_video/MANIFEST.json",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/shape/llava_video/make_shape.log",
    params:
        out=output_dir,
        ckpts=" ".join(LLAVA["shape"]["checkpoints"]),
        seed=LLAVA["shape"]["seed"],
        video=LLAVA["shape"]["video"],
    shell:
        "python -m zoorepro.llava_video.make_shape --out {params.out} --ckpt {params.ckpts} --seed {params.seed} "
        "--video-frames {params.video[frames]} --width {params.video[width]} --height {params.video[height]} "
        "> {log} 2>&1"


rule llava_video_download_checkpoint:
    # Full scale, the document's 权重下载: one llava-hf snapshot at the revision pinned in
    # manifests/llava_video_checkpoints.yaml, every file's sha256 verified (huggingface_hub,
    # resumable; offline once verified).
    input:
        manifest="manifests/llava_video_checkpoints.yaml",
    output:
        verified="data/full/llava_video/models/LLaVA-NeXT-Video-{ckpt}-hf/.verified.json",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/full/llava_video/download_{ckpt}.log",
    params:
        tofu=download_tofu_arg,
    resources:
        slurm_partition=network_partition,
    shell:
        "python -m zoorepro.llava_video.download_checkpoint --manifest {input.manifest} --ckpt {wildcards.ckpt} "
        "--dest data/full/llava_video/models {params.tofu} > {log} 2>&1"


rule llava_video_extract_dataset:
    # Document (数据集采样): python extract_dataset.py --Eval_QA_root --Eval_Video_root
    #   --sampling_output_folder --json_output_path --correct_answer_file --nums 1000
    # Fixed openly: seeded; keys qualified by subset (upstream's one dict keyed by question id never
    # samples Ucfcrime, NBA, Driving-decision-making); a missing video is named before anything is
    # written; videos copied as real files. `llava_video.sampling.merge: upstream` keeps the merge.
    input:
        unpack(IN_LLAVA.data),
    output:
        qa="work/{scale}/llava_video/sample/Video-Bench/Eval_QA/sampling_datasets_QA_new.json",
        answer="work/{scale}/llava_video/sample/Video-Bench/Eval_QA/sampling_answer.json",
        videos=directory("work/{scale}/llava_video/sample/VideoBench/Eval_video/sampling_data"),
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{scale}/llava_video/extract_dataset.log",
    params:
        qa_root=IN_LLAVA.path("eval_qa_root"),
        video_root=IN_LLAVA.path("eval_video_root"),
        answer=IN_LLAVA.path("answer"),
        out_videos=IN_LLAVA.path("sample_videos"),
        out_json=IN_LLAVA.path("sample_json"),
        nums=IN_LLAVA.nums,
        seed=LLAVA["sampling"]["seed"],
        merge=LLAVA["sampling"]["merge"],
    shell:
        "python -m zoorepro.llava_video.extract_dataset --Eval_QA_root {params.qa_root} "
        "--Eval_Video_root {params.video_root} --sampling_output_folder {params.out_videos} "
        "--json_output_path {params.out_json} --correct_answer_file {params.answer} --nums {params.nums} "
        "--seed {params.seed} --merge {params.merge} > {log} 2>&1"


rule llava_video_llava_gpu:
    # Document (GPU推理): bash run_pa_videobench_gpu.sh sampling_data ${Eval_QA_root} ${Eval_Video_root}
    #   ${weight_path} ${chat_conversation_output_folder}  (torchrun ... -m ...llava_gpu)
    # transformers' LlavaNextVideo classes loaded offline, 8 frames at arange(0, n, n/8), the
    # document's prompt and suffix, greedy; dtype explicit (llava_video.dtype). Fixed openly:
    # questions sharded over the processes (upstream: every process answers all and writes one
    # file); a container reporting 0 frames is decoded by counting. Added at shape scale: prefill and
    # decode rates with their FLOPs (count_flops, at each question's shapes) and % of the target's peak.
    input:
        unpack(IN_LLAVA.checkpoint),
        unpack(IN_LLAVA.peak),
        qa="work/{scale}/llava_video/sample/Video-Bench/Eval_QA/sampling_datasets_QA_new.json",
        videos="work/{scale}/llava_video/sample/VideoBench/Eval_video/sampling_data",
    output:
        answers="work/{scale}/llava_video/{target}/{ckpt}/transformers/Chat_results/sampling_data_eval.json",
        measurements="work/{scale}/llava_video/{target}/{ckpt}/transformers/perf.measurements.json",
        toolchain="work/{scale}/llava_video/{target}/{ckpt}/transformers/toolchain.json",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{scale}/llava_video/{target}/{ckpt}/llava_gpu.log",
    params:
        launch=IN_LLAVA.gpu_launch,
        weights=IN_LLAVA.checkpoint_path,
        qa_root=IN_LLAVA.path("sample_qa_root"),
        video_root=IN_LLAVA.path("sample_video_root"),
        out=lambda wildcards, output: str(Path(output.answers).parent),
        dtype=IN_LLAVA.dtype,
        device=IN_LLAVA.device,
        max_new_tokens=IN_LLAVA.max_new_tokens,
        frames=LLAVA["frames"],
        shape=IN_LLAVA.shape_args,
    resources:
        slurm_partition=chip_partition,
        gres=chip_gres,
    threads: lambda wildcards: IN_LLAVA.gpu_threads(wildcards) or all_cores(wildcards)
    shell:
        "{params.launch} zoorepro.llava_video.llava_gpu --model_path {params.weights} "
        "--dataset_name sampling_data --Eval_QA_root {params.qa_root} --Eval_Video_root {params.video_root} "
        "--chat_conversation_output_folder {params.out} --ckpt {wildcards.ckpt} --dtype {params.dtype} "
        "--device {params.device} --max_new_tokens {params.max_new_tokens} --frames {params.frames} "
        "--measurements {output.measurements} --toolchain {output.toolchain} --target {wildcards.target} {params.shape} "
        "> {log} 2>&1"


rule llava_video_run_pa_videobench:
    # Document (NPU推理): export MASTER_PORT=20030; bash run_pa_videobench.sh ${weight_path}
    #   ${video_path} ${eval_qa_root} ${chat_conversation_output_folder}  (from examples/atb_models)
    # MindIE-LLM from $MINDIE_LLM_HOME (pinned commit: zoorepro/runners/mindie.py) with the
    # document's ATB_* environment. MindIE refuses symlinks and odd path characters: the step hands
    # it real files (a private copy where DVC's cache would give it links).
    input:
        unpack(IN_LLAVA.checkpoint),
        qa="work/{scale}/llava_video/sample/Video-Bench/Eval_QA/sampling_datasets_QA_new.json",
        videos="work/{scale}/llava_video/sample/VideoBench/Eval_video/sampling_data",
    output:
        answers="work/{scale}/llava_video/{target}/{ckpt}/mindie/Chat_results/sampling_data_eval.json",
        measurements="work/{scale}/llava_video/{target}/{ckpt}/mindie/perf.measurements.json",
        toolchain="work/{scale}/llava_video/{target}/{ckpt}/mindie/toolchain.json",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{scale}/llava_video/{target}/{ckpt}/run_pa_videobench.log",
    params:
        env=IN_LLAVA.mindie_env,
        weights=IN_LLAVA.checkpoint_path,
        video_path=IN_LLAVA.path("sample_video_dir"),
        qa_root=IN_LLAVA.path("sample_qa_root"),
        out=lambda wildcards, output: str(Path(output.answers).parent),
        npu=IN_LLAVA.npu_settings,
    resources:
        slurm_partition=chip_partition,
        gres=chip_gres,
    threads: all_cores
    shell:
        "{params.env}python -m zoorepro.llava_video.run_pa_videobench {params.weights} {params.video_path} "
        "{params.qa_root} {params.out} {params.npu[max_batch_size]} {params.npu[max_input_length]} "
        "{params.npu[max_output_length]} --ckpt {wildcards.ckpt} --target {wildcards.target} "
        "--measurements {output.measurements} --toolchain {output.toolchain} > {log} 2>&1"


rule llava_video_score:
    # Each target's answers against the sampled ANSWER.json entries: accuracy in the corrected
    # reading (A-F, per subset, unparseable counted wrong) and Video-Bench's own score (per-subset
    # accuracy, its three levels and the final score, with its scoring script's weights).
    input:
        answers="work/{scale}/llava_video/{target}/{ckpt}/{runner}/Chat_results/sampling_data_eval.json",
        answer="work/{scale}/llava_video/sample/Video-Bench/Eval_QA/sampling_answer.json",
    output:
        measurements="work/{scale}/llava_video/{target}/{ckpt}/{runner}/score.measurements.json",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{scale}/llava_video/{target}/{ckpt}/{runner}_score.log",
    params:
        dtype=IN_LLAVA.dtype,
    shell:
        "python -m zoorepro.llava_video.videobench_score --eval {input.answers} "
        "--sampling_answer_path {input.answer} --ckpt {wildcards.ckpt} --precision {params.dtype} "
        "--out {output.measurements} > {log} 2>&1"


rule llava_video_precision_test:
    # Document (精度测试): python llava_video_precision_test.py --eval_npu_path --eval_gpu_path
    #   --sampling_answer_path. Both readings: the document's judging exactly (its parse rules, the
    # denominator of questions parseable in both files, F never recognised, [0] of the NPU string)
    # and the corrected one; the NPU-GPU gap and the share of equal answers.
    input:
        npu=IN_LLAVA.npu_answers,
        gpu=IN_LLAVA.reference_answers,
        answer="work/{scale}/llava_video/sample/Video-Bench/Eval_QA/sampling_answer.json",
    output:
        measurements="work/{scale}/llava_video/{target}/{ckpt}/precision_test.measurements.json",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{scale}/llava_video/{target}/{ckpt}/precision_test.log",
    params:
        dtype=IN_LLAVA.dtype,
    shell:
        "python -m zoorepro.llava_video.llava_video_precision_test --eval_npu_path {input.npu} "
        "--eval_gpu_path {input.gpu} --sampling_answer_path {input.answer} --ckpt {wildcards.ckpt} "
        "--precision {params.dtype} --out {output.measurements} > {log} 2>&1"
