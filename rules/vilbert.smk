# ViLBERT VQA (002_96a57c031fd5d3aa.txt): every step of the document, per scale and target.
# Trace of document commands to rules: README.md, section "ViLBERT: document steps -> rules".


rule vilbert_sources:
    # Document: git clone allennlp / allennlp-models at the pinned commits + `git apply *.patch`.
    # Here: the 2.10.1 releases (code-equivalent to the pinned commits) copied from the venv and
    # patched with patches/allennlp*/ (the document's two patches + what the modern stack needs).
    input:
        patches=VILBERT_PATCHES,
    output:
        manifest="work/src/vilbert/SOURCES.json",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/vilbert/sources.log",
    params:
        dest=output_dir,
    shell:
        "python scripts/vilbert/sources.py --dest {params.dest} --patches patches > {log} 2>&1"


rule vilbert_mini_data:
    # Mini scale: a generated VQA v2-format dataset, a random-weight Faster R-CNN checkpoint and a
    # tiny random-weight ViLBERT archive in allennlp's format. Nothing is downloaded.
    input:
        sources="work/src/vilbert/SOURCES.json",
    output:
        manifest="data/mini/vilbert/MANIFEST.json",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/mini/vilbert/make_mini.log",
    params:
        out=output_dir,
        seed=config["vilbert"]["mini"]["seed"],
        n_images=config["vilbert"]["mini"]["n_images"],
        n_questions=config["vilbert"]["mini"]["n_questions"],
    shell:
        "python scripts/vilbert/make_mini.py --out {params.out} --src work/src/vilbert --seed {params.seed} "
        "--n-images {params.n_images} --n-questions {params.n_questions} > {log} 2>&1"


rule vilbert_download:
    # Full scale: the document's downloads (VQA v2 val questions/annotations, val2014 images,
    # Faster R-CNN checkpoint, the model archive, BERT files), checksummed and resumable.
    # SSL verification stays on (the document tells users to disable it).
    input:
        manifest="manifests/vilbert.yaml",
    output:
        done="data/full/vilbert/.done/{entry}",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/full/vilbert/download_{entry}.log",
    params:
        tofu=download_tofu_arg,
    shell:
        "python scripts/download.py --manifest {input.manifest} --root data/full/vilbert "
        "--name {wildcards.entry} {params.tofu} > {log} 2>&1"


rule vilbert_preprocess:
    # Document: python3 preprocess.py --archive_file ... --save_dir ./preprocessed_data --pad_len=32 --box_num=100
    # Fixed: writes every sample once (the document writes the whole set 8 times) in ascending
    # question_id order (the document's loader shuffles unseeded).
    input:
        unpack(vilbert_data),
        sources="work/src/vilbert/SOURCES.json",
    output:
        data=directory("work/{scale}/vilbert/preprocessed"),
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{scale}/vilbert/preprocess.log",
    params:
        archive=vilbert_archive,
        data_dir="data/{scale}/vilbert",
        pad_len=config["vilbert"]["pad_len"],
        box_num=config["vilbert"]["box_num"],
        subset=vilbert_subset_arg,
        layout=vilbert_full_data_args,
    threads: workflow.cores
    shell:
        "python scripts/vilbert/preprocess.py --archive_file {params.archive} --save_dir {output.data} "
        "--data_dir {params.data_dir} --src work/src/vilbert --pad_len {params.pad_len} --box_num {params.box_num} "
        "{params.subset} {params.layout} > {log} 2>&1"


rule vilbert_export_onnx:
    # Document: python3 export_onnx.py --archive_file ... --save_path vqa-vilbert.onnx
    input:
        unpack(vilbert_data),
        sources="work/src/vilbert/SOURCES.json",
    output:
        onnx="work/{scale}/vilbert/onnx/vqa-vilbert.onnx",
        eager="work/{scale}/vilbert/onnx/vqa-vilbert.onnx.eager.npz",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{scale}/vilbert/export_onnx.log",
    params:
        archive=vilbert_archive,
        opset=config["vilbert"]["opset"],
        pad_len=config["vilbert"]["pad_len"],
        box_num=config["vilbert"]["box_num"],
        pretrained=vilbert_pretrained_arg,
    shell:
        "python scripts/vilbert/export_onnx.py --archive_file {params.archive} --save_path {output.onnx} "
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
        shapes=vilbert_input_shapes,
    shell:
        "python scripts/vilbert/onnxsim.py {input.onnx} {output.onnx} --input-shape {params.shapes} > {log} 2>&1"


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
        "python scripts/vilbert/fix_onnx.py {input.onnx} {output.onnx} > {log} 2>&1"


rule vilbert_compile:
    # Document: atc --framework=5 --model=...bs1_sim_fix.onnx --output=vqa-vilbert_bs1 --input_format=ND
    #   --log=error --soc_version=${chip_name} --optypelist_for_implmode="Gelu" --op_select_implmode=high_performance
    # (Ascend targets); onnxruntime targets load and place the ONNX file.
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
        shapes=vilbert_input_shapes,
    shell:
        "python scripts/compile.py --target {wildcards.target} --onnx {input.onnx} --batch-size {wildcards.bs} "
        "--input-shape {params.shapes} --out {output.model} --versions {output.versions} > {log} 2>&1"


rule vilbert_infer:
    # Document: python3 -m ais_bench --model vqa-vilbert_bs1.om --input preprocessed_data/box_features,...
    #   --output outputs --device 1 --outfmt NPY
    input:
        unpack(vilbert_compiled_for_accuracy),
        data="work/{scale}/vilbert/preprocessed",
    output:
        outputs=directory("work/{scale}/vilbert/{target}/outputs"),
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{scale}/vilbert/{target}/infer.log",
    params:
        bs=config["vilbert"]["accuracy_batch_size"],
        inputs=vilbert_input_dirs,
    shell:
        "python scripts/infer.py --target {wildcards.target} --model {input.model} --batch-size {params.bs} "
        "--inputs {params.inputs} --out-dir {output.outputs} > {log} 2>&1"


rule vilbert_postprocess:
    # Document: python3 postprocess.py --archive_file=... --result_dir=outputs/${timestamp}/
    #   --label_dir=preprocessed_data/labels --label_weight_dir=preprocessed_data/label_weights
    input:
        unpack(vilbert_data),
        outputs="work/{scale}/vilbert/{target}/outputs",
        data="work/{scale}/vilbert/preprocessed",
        versions=vilbert_accuracy_versions,
    output:
        metrics="work/{scale}/vilbert/{target}/metrics.json",
        measurements="work/{scale}/vilbert/{target}/accuracy.measurements.json",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{scale}/vilbert/{target}/postprocess.log",
    params:
        archive=vilbert_archive,
        precision=vilbert_precision,
    shell:
        "python scripts/vilbert/postprocess.py --archive_file {params.archive} --result_dir {input.outputs} "
        "--label_dir {input.data}/labels --label_weight_dir {input.data}/label_weights "
        "--precision {params.precision} --out {output.metrics} --measurements {output.measurements} > {log} 2>&1"


rule vilbert_perf:
    # Document: python3 -m ais_bench --model vqa-vilbert_bs1.om --loop 20 --device 1 (per batch size).
    # Uses every core so no other job runs beside a timing.
    input:
        model=vilbert_compiled_model,
    output:
        raw="work/{scale}/vilbert/{target}/perf_bs{bs}.json",
        measurements="work/{scale}/vilbert/{target}/perf_bs{bs}.measurements.json",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{scale}/vilbert/{target}/perf_bs{bs}.log",
    params:
        loop=config["vilbert"]["perf"]["loop"],
        warmup=config["vilbert"]["perf"]["warmup"],
    threads: workflow.cores
    shell:
        "python scripts/perf.py --target {wildcards.target} --model {input.model} --batch-size {wildcards.bs} "
        "--loop {params.loop} --warmup {params.warmup} --out {output.raw} --measurements {output.measurements} "
        "> {log} 2>&1"


rule vilbert_parity:
    # Not in the document: the target's outputs against onnxruntime-CPU golden outputs of the
    # exported ONNX on the same inputs (max abs diff, min cosine).
    input:
        golden="work/{scale}/vilbert/onnx/vqa-vilbert.onnx",
        outputs="work/{scale}/vilbert/{target}/outputs",
        data="work/{scale}/vilbert/preprocessed",
    output:
        measurements="work/{scale}/vilbert/{target}/parity.measurements.json",
    conda:
        "../envs/zoorepro.yaml"
    log:
        "logs/{scale}/vilbert/{target}/parity.log",
    params:
        inputs=vilbert_input_dirs,
        limit=config["vilbert"]["parity_samples"],
        bs=config["vilbert"]["accuracy_batch_size"],
        precision=vilbert_precision,
    shell:
        "python scripts/parity.py --golden-model {input.golden} --inputs {params.inputs} --outputs {input.outputs} "
        "--limit {params.limit} --batch-size {params.bs} --precision {params.precision} "
        "--measurements {output.measurements} > {log} 2>&1"
