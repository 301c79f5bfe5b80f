# VideoBERT on IxRT and ByteMLPerf (000_94813fe2aa136b00.txt), per scale and target.
# Code: zoorepro/videobert/ (its input functions: inputs.py); trace of document commands to rules:
# README.md, section "VideoBERT: document steps -> rules". Download, compare (general_perf's
# numeric check) and table are the shared rules (rules/data.smk, rules/compare.smk, rules/table.smk).

VIDEOBERT = config["videobert"]
IN_VIDEOBERT = INPUTS["videobert"]


rule videobert_mini_data:
    # Mini scale: CIFAR-100-format pickles, a text.npy [100,77] and a tiny random-weight CLIP
    # (transformers) with VideoBERT's signature; labels planted from the eager model, and the Top-1
    # they give in planted_claims.yaml (read by the table rule). Nothing is downloaded.
    output:
        manifest="data/mini/videobert/MANIFEST.json",
        planted="data/mini/videobert/planted_claims.yaml",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/mini/videobert/make_mini.log",
    params:
        out=output_dir,
        seed=VIDEOBERT["mini"]["seed"],
        n_images=VIDEOBERT["mini"]["n_images"],
        planted_top1=VIDEOBERT["mini"]["planted_top1"],
        planted_margin=VIDEOBERT["mini"]["planted_margin"],
    shell:
        "python -m zoorepro.videobert.make_mini --out {params.out} --seed {params.seed} "
        "--n-images {params.n_images} --planted-top1 {params.planted_top1} "
        "--planted-margin {params.planted_margin} > {log} 2>&1"


rule videobert_shape_data:
    # Shape scale: video-bert.onnx's source at real sizes with random weights (a CLIPModel at
    # params videobert.shape.clip: CLIP ViT-B/32's sizes, assumed), a few random CIFAR-format
    # images and CLIP-token prompts. Throughput only; nothing is downloaded.
    output:
        manifest="data/shape/videobert/MANIFEST.json",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/shape/videobert/make_shape.log",
    params:
        out=output_dir,
        seed=VIDEOBERT["shape"]["seed"],
        n_images=VIDEOBERT["shape"]["n_images"],
        clip=IN_VIDEOBERT.shape_clip_json,
    shell:
        "python -m zoorepro.videobert.make_shape --out {params.out} --seed {params.seed} "
        "--n-images {params.n_images} --clip {params.clip:q} > {log} 2>&1"


rule videobert_export_onnx:
    # Mini and shape scales: the generated CLIP exported with VideoBERT's ONNX signature (image,
    # text -> logits_per_image, logits_per_text). Full scale uses the document's video-bert.onnx.
    input:
        manifest="data/{scale}/videobert/MANIFEST.json",
    output:
        onnx="work/{scale}/videobert/onnx/video-bert.onnx",
    wildcard_constraints:
        scale="mini|shape",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{scale}/videobert/export_onnx.log",
    params:
        model_dir=IN_VIDEOBERT.generated_model,
        opset=VIDEOBERT["opset"],
    shell:
        "python -m zoorepro.videobert.export_onnx --model_dir {params.model_dir} --save_path {output.onnx} "
        "--opset {params.opset} > {log} 2>&1"


rule videobert_perf_engine:
    # Document: python3 core/perf_engine.py --hardware_type ILUVATAR --task videobert-onnx-fp32
    # (after copying cifar-100-python and video-bert.onnx into the ByteMLPerf tree and fetching the
    # workload JSON; here the workload JSON is shipped, pinned). A backend with ByteMLPerf's harness
    # (IxRT) runs ByteMLPerf's own perf_engine; portable targets run the same semantics on onnxruntime,
    # and add % of the target's peak (FLOPs of video-bert.onnx at each batch size, the `peak` rule).
    input:
        unpack(IN_VIDEOBERT.model_inputs),
        workload=IN_VIDEOBERT.workload_path,
        peak="work/{scale}/videobert/{target}/peak.json",
    output:
        report=directory("work/{scale}/videobert/{target}/report"),
        logits="work/{scale}/videobert/{target}/open_cifar.npy",
        measurements="work/{scale}/videobert/{target}/perf_engine.measurements.json",
        toolchain="work/{scale}/videobert/{target}/perf_engine.toolchain.json",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{scale}/videobert/{target}/perf_engine.log",
    params:
        onnx=IN_VIDEOBERT.onnx,
        data=IN_VIDEOBERT.cifar_dir,
        task=VIDEOBERT["task"],
        shape_args=IN_VIDEOBERT.perf_engine_args,
    resources:
        slurm_partition=chip_partition,
        gres=chip_gres,
    threads: all_cores
    shell:
        "python -m zoorepro.videobert.perf_engine --target {wildcards.target} --task {params.task} "
        "--onnx {params.onnx} --data {params.data} --workload {input.workload} --out-dir {output.report} "
        "--logits {output.logits} --peak {input.peak} {params.shape_args} "
        "--measurements {output.measurements} --toolchain {output.toolchain} > {log} 2>&1"


rule videobert_compile:
    # Document (scripts/infer_videobert_fp16_performance.sh, BS=16):
    #   python3 ${OPTIMIER_FILE} --onnx ${ORIGIN_ONNX} --dump_onnx
    #   ixrtexec --onnx ${TARGET_ONNX} --min_shape image:16x3x224x224,text:100x77 --opt_shape ... --max_shape ...
    #     --save_engine ${TARGET_ENGINE} --log_level error --plugins ixrt_plugin --shapes image:16x3x224x224,text:100x77
    # (the shapes are params `videobert.input_shapes` at the batch size).
    input:
        unpack(IN_VIDEOBERT.model_inputs),
    output:
        model="work/{scale}/videobert/{target}/model_bs{bs}.engine",
        versions="work/{scale}/videobert/{target}/model_bs{bs}.engine.toolchain.json",
        shapes="work/{scale}/videobert/{target}/model_bs{bs}.engine.inputs.json",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{scale}/videobert/{target}/compile_bs{bs}.log",
    params:
        onnx=IN_VIDEOBERT.onnx,
        shapes=IN_VIDEOBERT.input_shapes,
        tool_args=IN_VIDEOBERT.compile_tool_args,
    resources:
        slurm_partition=chip_partition,
        gres=chip_gres,
    shell:
        "python -m zoorepro.steps.compile --target {wildcards.target} --onnx {params.onnx} --batch-size {wildcards.bs} "
        "--input-shape {params.shapes} --tool-args={params.tool_args:q} --out {output.model} "
        "--versions {output.versions} > {log} 2>&1"


rule videobert_perf:
    # Document: ixrtexec --load_engine ${TARGET_ENGINE} --plugins ixrt_plugin --shapes image:16x3x224x224,text:100x77
    # ("fps: F with batchsize B" and "Throughput: T qps" parsed; T counts engine executions). Added:
    # % of the target's peak, from the FLOPs of the ONNX the engine was built from at those shapes.
    input:
        unpack(IN_VIDEOBERT.model_inputs),
        model="work/{scale}/videobert/{target}/model_bs{bs}.engine",
        peak="work/{scale}/videobert/{target}/peak.json",
    output:
        raw="work/{scale}/videobert/{target}/perf_bs{bs}.json",
        measurements="work/{scale}/videobert/{target}/perf_bs{bs}.measurements.json",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{scale}/videobert/{target}/perf_bs{bs}.log",
    params:
        loop=VIDEOBERT["ixrtexec"]["iterations"],
        warmup=VIDEOBERT["ixrtexec"]["warmup"],
        onnx=IN_VIDEOBERT.onnx,
        shapes=IN_VIDEOBERT.input_shapes,
    resources:
        slurm_partition=chip_partition,
        gres=chip_gres,
    threads: all_cores
    shell:
        "python -m zoorepro.steps.perf --target {wildcards.target} --model {input.model} --batch-size {wildcards.bs} "
        "--loop {params.loop} --warmup {params.warmup} --out {output.raw} --measurements {output.measurements} "
        "--flops-onnx {params.onnx} --flops-input-shape {params.shapes} --peak {input.peak} > {log} 2>&1"
