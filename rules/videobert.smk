# VideoBERT on IxRT and ByteMLPerf (000_94813fe2aa136b00.txt), per scale and target.
# Trace of document commands to rules: README.md, section "VideoBERT: document steps -> rules".


rule videobert_download:
    # Document: scripts/prepare_model_and_dataset.sh (wget + tar xf of open_videobert.tar and
    # cifar-100-python.tar). Here: checksummed where a checksum exists, resumable, safe extraction.
    input:
        manifest="manifests/videobert.yaml",
    output:
        done="data/full/videobert/.done/{entry}",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/full/videobert/download_{entry}.log",
    params:
        tofu=download_tofu_arg,
    shell:
        "python scripts/download.py --manifest {input.manifest} --root data/full/videobert "
        "--name {wildcards.entry} {params.tofu} > {log} 2>&1"


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
        seed=config["videobert"]["mini"]["seed"],
        n_images=config["videobert"]["mini"]["n_images"],
    shell:
        "python scripts/videobert/make_mini.py --out {params.out} --seed {params.seed} "
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
        model_dir=videobert_mini_model_dir,
        opset=config["videobert"]["opset"],
    shell:
        "python scripts/videobert/export_onnx.py --model_dir {params.model_dir} --save_path {output.onnx} "
        "--opset {params.opset} > {log} 2>&1"


rule videobert_perf_engine:
    # Document: python3 core/perf_engine.py --hardware_type ILUVATAR --task videobert-onnx-fp32
    # (after copying cifar-100-python and video-bert.onnx into the ByteMLPerf tree and fetching the
    # workload JSON; here the workload JSON is shipped, pinned). mrv100 runs ByteMLPerf's own
    # perf_engine; portable targets run the same semantics on onnxruntime.
    input:
        unpack(videobert_model_inputs),
        workload="workloads/videobert-onnx-fp32.json",
    output:
        report=directory("work/{scale}/videobert/{target}/report"),
        measurements="work/{scale}/videobert/{target}/perf_engine.measurements.json",
        toolchain="work/{scale}/videobert/{target}/perf_engine.toolchain.json",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{scale}/videobert/{target}/perf_engine.log",
    params:
        onnx=videobert_onnx,
        data=videobert_cifar_dir,
        task=config["videobert"]["task"],
    threads: workflow.cores
    shell:
        "python scripts/videobert/perf_engine.py --target {wildcards.target} --task {params.task} "
        "--onnx {params.onnx} --data {params.data} --workload {input.workload} --out-dir {output.report} "
        "--measurements {output.measurements} --toolchain {output.toolchain} > {log} 2>&1"


rule videobert_compile:
    # Document (scripts/infer_videobert_fp16_performance.sh, BS=16):
    #   python3 ${OPTIMIER_FILE} --onnx ${ORIGIN_ONNX} --dump_onnx
    #   ixrtexec --onnx ${TARGET_ONNX} --min_shape image:16x3x224x224,text:100x77 --opt_shape ... --max_shape ...
    #     --save_engine ${TARGET_ENGINE} --log_level error --plugins ixrt_plugin --shapes image:16x3x224x224,text:100x77
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
    shell:
        "python scripts/compile.py --target {wildcards.target} --onnx {params.onnx} --batch-size {wildcards.bs} "
        "--out {output.model} --versions {output.versions} > {log} 2>&1"


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
        loop=config["videobert"]["ixrtexec"]["iterations"],
        warmup=config["videobert"]["ixrtexec"]["warmup"],
    threads: workflow.cores
    shell:
        "python scripts/perf.py --target {wildcards.target} --model {input.model} --batch-size {wildcards.bs} "
        "--loop {params.loop} --warmup {params.warmup} --out {output.raw} --measurements {output.measurements} "
        "> {log} 2>&1"


rule videobert_numeric:
    # general_perf's test_numeric: this target's logits against the onnxruntime-CPU reference.
    input:
        reference="work/{scale}/videobert/cpu/report",
        other="work/{scale}/videobert/{target}/report",
        workload="workloads/videobert-onnx-fp32.json",
    output:
        measurements="work/{scale}/videobert/{target}/numeric.measurements.json",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{scale}/videobert/{target}/numeric.log",
    params:
        bs=videobert_accuracy_batch_size,
        precision=videobert_precision,
    shell:
        "python scripts/videobert/numeric.py --reference {input.reference}/open_cifar.npy "
        "--other {input.other}/open_cifar.npy --batch-size {params.bs} --precision {params.precision} "
        "--measurements {output.measurements} > {log} 2>&1"
