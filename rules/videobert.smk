# VideoBERT on IxRT and ByteMLPerf (000_94813fe2aa136b00.txt), per scale and target.
# Code: zoorepro/videobert/; trace of document commands to rules: README.md, section
# "VideoBERT: document steps -> rules". Download, compare (general_perf's numeric check) and table
# are the shared rules (rules/data.smk, rules/compare.smk, rules/table.smk).

VIDEOBERT = config["videobert"]
VIDEOBERT_WORKLOAD = Path(workflow.basedir, "workloads", f"{VIDEOBERT['task']}.json")
VIDEOBERT_FULL_ONNX = "data/full/videobert/model_zoo/popular/open_videobert/video-bert.onnx"


def videobert_workload():
    import json

    return json.loads(VIDEOBERT_WORKLOAD.read_text())


def videobert_model_inputs(wildcards):
    """The ONNX and data a VideoBERT step reads: the exported mini model and generated data, or
    the document's downloads (their stamps; the files inside are named by videobert_onnx and
    videobert_cifar_dir)."""
    if wildcards.scale == "mini":
        return {"onnx": "work/mini/videobert/onnx/video-bert.onnx", "data": "data/mini/videobert/MANIFEST.json"}
    return full_data("videobert")


def videobert_onnx(wildcards):
    if wildcards.scale == "mini":
        return "work/mini/videobert/onnx/video-bert.onnx"
    return VIDEOBERT_FULL_ONNX


def videobert_cifar_dir(wildcards):
    if wildcards.scale == "mini":
        return "data/mini/videobert/cifar-100-python"
    return "data/full/videobert/datasets/open_cifar/cifar-100-python"


def videobert_input_shapes(wildcards):
    return shape_words(VIDEOBERT["input_shapes"], wildcards.bs)


def videobert_accuracy_batch_size(wildcards):
    """perf_engine measures accuracy at the workload's first batch size."""
    return videobert_workload()["batch_sizes"][0]


def videobert_table_inputs(wildcards):
    scale, target = scale_of(wildcards), wildcards.target
    base = f"work/{scale}/videobert/{target}"
    measurements = [f"{base}/perf_engine.measurements.json"]
    if target != VIDEOBERT["compare"]["reference"]:  # the reference is not compared with itself
        measurements.append(f"{base}/compare.measurements.json")
    if get_backend(target, config).artifact_suffix == "engine":  # IxRT: the document's ixrtexec perf at BS 16
        measurements.append(f"{base}/perf_bs{VIDEOBERT['ixrtexec_batch_size']}.measurements.json")
    return {"measurements": measurements, "toolchain": f"{base}/perf_engine.toolchain.json"}


TABLE_INPUTS["videobert"] = videobert_table_inputs
COMPARE_BATCH_SIZE["videobert"] = videobert_accuracy_batch_size


rule videobert_mini_data:
    # Mini scale: CIFAR-100-format pickles, a text.npy [100,77] and a tiny random-weight CLIP
    # (transformers) with VideoBERT's signature. Nothing is downloaded.
    output:
        manifest="data/mini/videobert/MANIFEST.json",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/mini/videobert/make_mini.log",
    params:
        out=output_dir,
        seed=VIDEOBERT["mini"]["seed"],
        n_images=VIDEOBERT["mini"]["n_images"],
    shell:
        "python -m zoorepro.videobert.make_mini --out {params.out} --seed {params.seed} "
        "--n-images {params.n_images} > {log} 2>&1"


rule videobert_export_onnx:
    # Mini scale only: the tiny CLIP exported with VideoBERT's ONNX signature (image, text ->
    # logits_per_image, logits_per_text). Full scale uses the document's video-bert.onnx.
    input:
        manifest="data/mini/videobert/MANIFEST.json",
    output:
        onnx="work/mini/videobert/onnx/video-bert.onnx",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/mini/videobert/export_onnx.log",
    params:
        model_dir="data/mini/videobert/open_videobert/mini-clip",
        opset=VIDEOBERT["opset"],
    shell:
        "python -m zoorepro.videobert.export_onnx --model_dir {params.model_dir} --save_path {output.onnx} "
        "--opset {params.opset} > {log} 2>&1"


rule videobert_perf_engine:
    # Document: python3 core/perf_engine.py --hardware_type ILUVATAR --task videobert-onnx-fp32
    # (after copying cifar-100-python and video-bert.onnx into the ByteMLPerf tree and fetching the
    # workload JSON; here the workload JSON is shipped, pinned). A backend with ByteMLPerf's harness
    # (IxRT) runs ByteMLPerf's own perf_engine; portable targets run the same semantics on onnxruntime.
    input:
        unpack(videobert_model_inputs),
        workload=str(VIDEOBERT_WORKLOAD.relative_to(workflow.basedir)),
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
        onnx=videobert_onnx,
        data=videobert_cifar_dir,
        task=VIDEOBERT["task"],
    threads: workflow.cores
    shell:
        "python -m zoorepro.videobert.perf_engine --target {wildcards.target} --task {params.task} "
        "--onnx {params.onnx} --data {params.data} --workload {input.workload} --out-dir {output.report} "
        "--logits {output.logits} "
        "--measurements {output.measurements} --toolchain {output.toolchain} > {log} 2>&1"


rule videobert_compile:
    # Document (scripts/infer_videobert_fp16_performance.sh, BS=16):
    #   python3 ${OPTIMIER_FILE} --onnx ${ORIGIN_ONNX} --dump_onnx
    #   ixrtexec --onnx ${TARGET_ONNX} --min_shape image:16x3x224x224,text:100x77 --opt_shape ... --max_shape ...
    #     --save_engine ${TARGET_ENGINE} --log_level error --plugins ixrt_plugin --shapes image:16x3x224x224,text:100x77
    # (the shapes are params `videobert.input_shapes` at the batch size).
    input:
        unpack(videobert_model_inputs),
    output:
        model="work/{scale}/videobert/{target}/model_bs{bs}.engine",
        versions="work/{scale}/videobert/{target}/model_bs{bs}.engine.toolchain.json",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{scale}/videobert/{target}/compile_bs{bs}.log",
    params:
        onnx=videobert_onnx,
        shapes=videobert_input_shapes,
    shell:
        "python -m zoorepro.steps.compile --target {wildcards.target} --onnx {params.onnx} --batch-size {wildcards.bs} "
        "--input-shape {params.shapes} --out {output.model} --versions {output.versions} > {log} 2>&1"


rule videobert_perf:
    # Document: ixrtexec --load_engine ${TARGET_ENGINE} --plugins ixrt_plugin --shapes image:16x3x224x224,text:100x77
    # ("fps: F with batchsize B" and "Throughput: T qps" parsed; T counts engine executions).
    input:
        model="work/{scale}/videobert/{target}/model_bs{bs}.engine",
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
    threads: workflow.cores
    shell:
        "python -m zoorepro.steps.perf --target {wildcards.target} --model {input.model} --batch-size {wildcards.bs} "
        "--loop {params.loop} --warmup {params.warmup} --out {output.raw} --measurements {output.measurements} "
        "> {log} 2>&1"
