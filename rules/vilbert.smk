# ViLBERT VQA (002_96a57c031fd5d3aa.txt): every step of the document, per scale and target.
# Code: zoorepro/vilbert/ (one module per document step; its input functions: inputs.py); trace of
# document commands to rules: README.md, section "ViLBERT: document steps -> rules". Sources,
# download, compare and table are the shared rules (rules/data.smk, rules/compare.smk, rules/table.smk).

VILBERT = config["vilbert"]
IN_VILBERT = INPUTS["vilbert"]


rule vilbert_mini_data:
    # Mini scale: a generated VQA v2-format dataset, a random-weight Faster R-CNN checkpoint and a
    # tiny random-weight ViLBERT archive in allennlp's format. Nothing is downloaded. The answers are
    # planted from the eager model's logits; planted_claims.yaml holds the expected metrics.
    input:
        sources="work/src/vilbert/SOURCES.json",
    output:
        manifest="data/mini/vilbert/MANIFEST.json",
        planted="data/mini/vilbert/planted_claims.yaml",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/mini/vilbert/make_mini.log",
    params:
        out=output_dir,
        seed=VILBERT["mini"]["seed"],
        n_images=VILBERT["mini"]["n_images"],
        n_questions=VILBERT["mini"]["n_questions"],
    shell:
        "python -m zoorepro.vilbert.make_mini --out {params.out} --src work/src/vilbert --seed {params.seed} "
        "--n-images {params.n_images} --n-questions {params.n_questions} > {log} 2>&1"


rule vilbert_preprocess:
    # Document: python3 preprocess.py --archive_file ... --save_dir ./preprocessed_data --pad_len=32 --box_num=100
    # Fixed: writes every sample once (the document writes the whole set 8 times) in ascending
    # question_id order (the document's loader shuffles unseeded).
    input:
        unpack(IN_VILBERT.data),
        sources="work/src/vilbert/SOURCES.json",
    output:
        data=directory("work/{scale}/vilbert/preprocessed"),
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{scale}/vilbert/preprocess.log",
    params:
        archive=IN_VILBERT.archive,
        data_dir="data/{scale}/vilbert",
        pad_len=VILBERT["pad_len"],
        box_num=VILBERT["box_num"],
        subset=IN_VILBERT.subset_arg,
        layout=IN_VILBERT.full_layout_args,
    resources:
        mem_mb=lambda wildcards, input: data_mem_mb(input, f"data/{wildcards.scale}/vilbert"),
    threads: all_cores
    shell:
        "python -m zoorepro.vilbert.preprocess --archive_file {params.archive} --save_dir {output.data} "
        "--data_dir {params.data_dir} --src work/src/vilbert --pad_len {params.pad_len} --box_num {params.box_num} "
        "{params.subset} {params.layout} > {log} 2>&1"


rule vilbert_export_onnx:
    # Document: python3 export_onnx.py --archive_file ... --save_path vqa-vilbert.onnx
    input:
        unpack(IN_VILBERT.data),
        sources="work/src/vilbert/SOURCES.json",
    output:
        onnx="work/{scale}/vilbert/onnx/vqa-vilbert.onnx",
        eager="work/{scale}/vilbert/onnx/vqa-vilbert.onnx.eager.npz",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{scale}/vilbert/export_onnx.log",
    params:
        archive=IN_VILBERT.archive,
        opset=VILBERT["opset"],
        pad_len=VILBERT["pad_len"],
        box_num=VILBERT["box_num"],
        pretrained=IN_VILBERT.pretrained_arg,
    shell:
        "python -m zoorepro.vilbert.export_onnx --archive_file {params.archive} --save_path {output.onnx} "
        "--src work/src/vilbert --opset {params.opset} --pad_len {params.pad_len} --box_num {params.box_num} "
        "{params.pretrained} > {log} 2>&1"


rule vilbert_onnxsim:
    # Document: python -m onnxsim vqa-vilbert.onnx vqa-vilbert_bs1_sim.onnx --input-shape "box_features:1,100,1024" ...
    input:
        onnx="work/{scale}/vilbert/onnx/vqa-vilbert.onnx",
    output:
        onnx="work/{scale}/vilbert/onnx/vqa-vilbert_bs{bs}_sim.onnx",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{scale}/vilbert/onnxsim_bs{bs}.log",
    params:
        shapes=IN_VILBERT.input_shapes,
    shell:
        "python -m zoorepro.steps.simplify {input.onnx} {output.onnx} --input-shape {params.shapes} > {log} 2>&1"


rule vilbert_fix_onnx:
    # Document: python3 fix_onnx.py vqa-vilbert_bs1_sim.onnx vqa-vilbert_bs1_sim_fix.onnx
    input:
        onnx="work/{scale}/vilbert/onnx/vqa-vilbert_bs{bs}_sim.onnx",
    output:
        onnx="work/{scale}/vilbert/onnx/vqa-vilbert_bs{bs}_sim_fix.onnx",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{scale}/vilbert/fix_onnx_bs{bs}.log",
    shell:
        "python -m zoorepro.vilbert.fix_onnx {input.onnx} {output.onnx} > {log} 2>&1"


rule vilbert_compile:
    # Document: atc --framework=5 --model=...bs1_sim_fix.onnx --output=vqa-vilbert_bs1 --input_format=ND
    #   --log=error --soc_version=${chip_name} --optypelist_for_implmode="Gelu" --op_select_implmode=high_performance
    # (Ascend targets; the last two flags are params `vilbert.compile_args.atc`); onnxruntime targets load
    # and place the ONNX file.
    input:
        onnx="work/{scale}/vilbert/onnx/vqa-vilbert_bs{bs}_sim_fix.onnx",
    output:
        model="work/{scale}/vilbert/{target}/model_bs{bs}.{ext}",
        versions="work/{scale}/vilbert/{target}/model_bs{bs}.{ext}.toolchain.json",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{scale}/vilbert/{target}/compile_bs{bs}.{ext}.log",
    params:
        shapes=IN_VILBERT.input_shapes,
        tool_args=IN_VILBERT.compile_tool_args,
    resources:
        slurm_partition=chip_partition,
        gres=chip_gres,
    shell:
        "python -m zoorepro.steps.compile --target {wildcards.target} --onnx {input.onnx} --batch-size {wildcards.bs} "
        "--input-shape {params.shapes} --check-shapes --tool-args={params.tool_args:q} --out {output.model} "
        "--versions {output.versions} > {log} 2>&1"


rule vilbert_infer:
    # Document: python3 -m ais_bench --model vqa-vilbert_bs1.om --input preprocessed_data/box_features,...
    #   --output outputs --device 1 --outfmt NPY
    input:
        unpack(IN_VILBERT.accuracy_model),
        data="work/{scale}/vilbert/preprocessed",
    output:
        outputs=directory("work/{scale}/vilbert/{target}/outputs"),
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{scale}/vilbert/{target}/infer.log",
    params:
        bs=VILBERT["accuracy_batch_size"],
        inputs=IN_VILBERT.input_dirs,
    resources:
        slurm_partition=chip_partition,
        gres=chip_gres,
    shell:
        "python -m zoorepro.steps.infer --target {wildcards.target} --model {input.model} --batch-size {params.bs} "
        "--inputs {params.inputs} --out-dir {output.outputs} > {log} 2>&1"


rule vilbert_golden:
    # Not in the document: the compare step's reference (params vilbert.compare): the exported,
    # un-simplified, un-fixed ONNX on onnxruntime-CPU over the first `samples` samples.
    input:
        onnx="work/{scale}/vilbert/onnx/vqa-vilbert.onnx",
        data="work/{scale}/vilbert/preprocessed",
    output:
        outputs=directory("work/{scale}/vilbert/onnx/golden/outputs"),
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{scale}/vilbert/golden.log",
    params:
        inputs=IN_VILBERT.input_dirs,
        limit=VILBERT["compare"]["samples"],
    shell:
        "python -m zoorepro.steps.infer --target cpu --model {input.onnx} --batch-size 1 --limit {params.limit} "
        "--inputs {params.inputs} --out-dir {output.outputs} > {log} 2>&1"


rule vilbert_postprocess:
    # Document: python3 postprocess.py --archive_file=... --result_dir=outputs/${timestamp}/
    #   --label_dir=preprocessed_data/labels --label_weight_dir=preprocessed_data/label_weights
    input:
        unpack(IN_VILBERT.data),
        outputs="work/{scale}/vilbert/{target}/outputs",
        data="work/{scale}/vilbert/preprocessed",
    output:
        metrics="work/{scale}/vilbert/{target}/metrics.json",
        measurements="work/{scale}/vilbert/{target}/accuracy.measurements.json",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{scale}/vilbert/{target}/postprocess.log",
    params:
        archive=IN_VILBERT.archive,
        precision=precision,
    shell:
        "python -m zoorepro.vilbert.postprocess --archive_file {params.archive} --result_dir {input.outputs} "
        "--label_dir {input.data}/labels --label_weight_dir {input.data}/label_weights "
        "--precision {params.precision} --out {output.metrics} --measurements {output.measurements} > {log} 2>&1"


rule vilbert_shape_data:
    # Shape scale: the released model's architecture at its real sizes with random weights, as an
    # allennlp archive (throughput only; nothing is downloaded, no data is needed).
    input:
        sources="work/src/vilbert/SOURCES.json",
    output:
        manifest="data/shape/vilbert/MANIFEST.json",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/shape/vilbert/make_shape.log",
    params:
        out=output_dir,
    shell:
        "python -m zoorepro.vilbert.make_shape --out {params.out} --src work/src/vilbert > {log} 2>&1"


rule vilbert_perf:
    # Document: python3 -m ais_bench --model vqa-vilbert_bs1.om --loop 20 --device 1 (per batch size).
    # Uses every core so no other job runs beside a timing. Added: % of the target's peak, from the
    # FLOPs of the graph the model was compiled from.
    input:
        model=IN_VILBERT.compiled_model,
        graph="work/{scale}/vilbert/onnx/vqa-vilbert_bs{bs}_sim_fix.onnx",
        peak="work/{scale}/vilbert/{target}/peak.json",
    output:
        raw="work/{scale}/vilbert/{target}/perf_bs{bs}.json",
        measurements="work/{scale}/vilbert/{target}/perf_bs{bs}.measurements.json",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{scale}/vilbert/{target}/perf_bs{bs}.log",
    params:
        loop=lambda wildcards: IN_VILBERT.perf(wildcards)["loop"],
        warmup=lambda wildcards: IN_VILBERT.perf(wildcards)["warmup"],
    resources:
        slurm_partition=chip_partition,
        gres=chip_gres,
    threads: all_cores
    shell:
        "python -m zoorepro.steps.perf --target {wildcards.target} --model {input.model} --batch-size {wildcards.bs} "
        "--loop {params.loop} --warmup {params.warmup} --out {output.raw} --measurements {output.measurements} "
        "--flops-onnx {input.graph} --peak {input.peak} > {log} 2>&1"
