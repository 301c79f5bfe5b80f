# Helpers shared by the rules/*.smk files: config validation, scale/target mapping, input functions.
import sys
from pathlib import Path

sys.path.insert(0, workflow.basedir)

from zoorepro.backends import get_backend  # noqa: E402
from zoorepro.config import results_dir, scale_of_results_dir, target_settings, validate  # noqa: E402

validate(config)

SCALES = ("mini", "full")
RESULT_DIRS = ("results", "results/mini")
MODEL_EXT = {"ascend": "om", "onnxruntime": "onnx"}


def default_tables():
    """The tables the default target and `dvc repro` build: params.yaml `tables` at `scale`."""
    scale = config["scale"]
    return [
        f"{results_dir(scale)}/{model}_{target}.csv"
        for model, targets in config["tables"][scale].items()
        for target in targets
    ]


def require_target(target):
    """Refuse an unknown target, and a target whose toolchain is missing, before any job runs
    (a dry run only plans, so it needs no toolchain). No fallback to another target, ever."""
    target_settings(config, target)
    if not workflow.dryrun:
        get_backend(target, config).check()


def output_dir(wildcards, output):
    """The folder of a rule's first output (for scripts that take a folder)."""
    return str(Path(output[0]).parent)


def download_tofu_arg(wildcards):
    return "--trust-on-first-use" if config["downloads"]["trust_on_first_use"] else ""


def scale_of(wildcards):
    return scale_of_results_dir(wildcards.resdir)


def model_ext(target):
    """om for Ascend targets (ATC output), onnx for onnxruntime targets."""
    return MODEL_EXT[target_settings(config, target)["backend"]]


def input_shape_args(model, bs):
    """The documented --input-shape words for one batch size, from params.yaml."""
    if model == "vilbert":
        p, b, n = config["vilbert"]["pad_len"], config["vilbert"]["box_num"], int(bs)
        return (
            f'"box_features:{n},{b},1024" "box_coordinates:{n},{b},4" "box_mask:{n},{b}" '
            f'"token_ids:{n},{p}" "mask:{n},{p}" "type_ids:{n},{p}"'
        )
    raise ValueError(f"no input shapes known for {model}")


# ---- ViLBERT -------------------------------------------------------------------------------

VILBERT_PATCHES = sorted(str(p) for p in Path(workflow.basedir, "patches").glob("allennlp*/*.patch"))
VILBERT_ARCHIVES = {
    "mini": "data/mini/vilbert/vilbert-vqa-mini.tar.gz",
    "full": "data/full/vilbert/vilbert-vqa-pretrained.2021-03-15.tar.gz",
}
VILBERT_INPUTS = ("box_features", "box_coordinates", "box_mask", "token_ids", "mask", "type_ids")


def vilbert_full_entries():
    import yaml

    manifest = yaml.safe_load(Path(workflow.basedir, "manifests/vilbert.yaml").read_text())
    return [entry["name"] for entry in manifest["entries"]]


def vilbert_data(wildcards):
    """The data a ViLBERT step reads: generated (mini) or downloaded and verified (full)."""
    if wildcards.scale == "mini":
        return {"manifest": "data/mini/vilbert/MANIFEST.json"}
    return {f"download_{name}": f"data/full/vilbert/.done/{name}" for name in vilbert_full_entries()}


def vilbert_archive(wildcards):
    return VILBERT_ARCHIVES[wildcards.scale]


def vilbert_full_data_args(wildcards):
    """Full-scale layout (manifests/vilbert.yaml): COCO unpacks under images/val2014/ (the reader
    globs its image_dir recursively); the mini generator writes val2014/ where preprocess looks."""
    return "--image_dir data/full/vilbert/images" if wildcards.scale == "full" else ""


def vilbert_pretrained_arg(wildcards):
    """The real archive builds its text stream from bert-base-uncased before loading its weights."""
    return "--pretrained_dir data/full/vilbert/bert-base-uncased" if wildcards.scale == "full" else ""


def vilbert_subset_arg(wildcards):
    subset = config["vilbert"]["full"]["question_subset"]
    return f"--question_subset {subset}" if wildcards.scale == "full" and subset else ""


def vilbert_input_shapes(wildcards):
    return input_shape_args("vilbert", wildcards.bs)


def vilbert_input_dirs(wildcards):
    return " ".join(f"work/{wildcards.scale}/vilbert/preprocessed/{name}" for name in VILBERT_INPUTS)


def vilbert_compiled_model(wildcards):
    ext = model_ext(wildcards.target)
    return f"work/{wildcards.scale}/vilbert/{wildcards.target}/model_bs{wildcards.bs}.{ext}"


def vilbert_compiled_for_accuracy(wildcards):
    bs = config["vilbert"]["accuracy_batch_size"]
    ext = model_ext(wildcards.target)
    return {"model": f"work/{wildcards.scale}/vilbert/{wildcards.target}/model_bs{bs}.{ext}"}


def vilbert_accuracy_versions(wildcards):
    return vilbert_toolchain(wildcards.scale, wildcards.target)


def vilbert_toolchain(scale, target):
    """The toolchain versions recorded when the accuracy model was compiled."""
    bs = config["vilbert"]["accuracy_batch_size"]
    return f"work/{scale}/vilbert/{target}/model_bs{bs}.{model_ext(target)}.toolchain.json"


def vilbert_precision(wildcards):
    """What the target computes in: ATC's default precision_mode is force_fp16."""
    return "fp16" if target_settings(config, wildcards.target)["backend"] == "ascend" else "fp32"


def vilbert_table_inputs(wildcards):
    scale, target = scale_of(wildcards), wildcards.target
    require_target(target)
    base = f"work/{scale}/vilbert/{target}"
    inputs = {
        "accuracy": f"{base}/accuracy.measurements.json",
        "parity": f"{base}/parity.measurements.json",
        "toolchain": vilbert_toolchain(scale, target),
    }
    for bs in config["vilbert"]["batch_sizes"]:
        inputs[f"perf_bs{bs}"] = f"{base}/perf_bs{bs}.measurements.json"
    return inputs


def vilbert_measurement_specs(wildcards, input):
    """Measurement files for the table, each with the raw outputs its numbers came from."""
    scale, target = scale_of(wildcards), wildcards.target
    pre = f"work/{scale}/vilbert/preprocessed"
    raw = f"work/{scale}/vilbert/{target}/outputs,{pre}/labels,{pre}/label_weights"
    specs = [f"{input.accuracy}={raw}", input.parity]
    specs += [input[f"perf_bs{bs}"] for bs in config["vilbert"]["batch_sizes"]]
    return " ".join(specs)


# ---- VideoBERT -----------------------------------------------------------------------------

VIDEOBERT_WORKLOAD = Path(workflow.basedir, "workloads", "videobert-onnx-fp32.json")
VIDEOBERT_FULL_ONNX = "data/full/videobert/model_zoo/popular/open_videobert/video-bert.onnx"


def videobert_workload():
    import json

    return json.loads(VIDEOBERT_WORKLOAD.read_text())


def videobert_full_entries():
    import yaml

    manifest = yaml.safe_load(Path(workflow.basedir, "manifests/videobert.yaml").read_text())
    return [entry["name"] for entry in manifest["entries"]]


def videobert_model_inputs(wildcards):
    """The ONNX and data a VideoBERT step reads: the exported mini model and generated data, or
    the document's downloads (their stamps; the files inside are named by videobert_onnx and
    videobert_cifar_dir)."""
    if wildcards.scale == "mini":
        return {"onnx": "work/mini/videobert/onnx/video-bert.onnx", "data": "data/mini/videobert/MANIFEST.json"}
    return {f"download_{name}": f"data/full/videobert/.done/{name}" for name in videobert_full_entries()}


def videobert_onnx(wildcards):
    if wildcards.scale == "mini":
        return "work/mini/videobert/onnx/video-bert.onnx"
    return VIDEOBERT_FULL_ONNX


def videobert_cifar_dir(wildcards):
    if wildcards.scale == "mini":
        return "data/mini/videobert/cifar-100-python"
    return "data/full/videobert/datasets/open_cifar/cifar-100-python"


def videobert_mini_model_dir(wildcards):
    return "data/mini/videobert/open_videobert/mini-clip"


def videobert_accuracy_batch_size(wildcards):
    """perf_engine measures accuracy at the workload's first batch size."""
    return videobert_workload()["batch_sizes"][0]


def videobert_precision(wildcards):
    """ByteMLPerf's ILUVATAR backend builds FP32 workloads as FP16; onnxruntime runs fp32."""
    return "fp16" if target_settings(config, wildcards.target)["backend"] == "ixrt" else "fp32"


def videobert_table_inputs(wildcards):
    scale, target = scale_of(wildcards), wildcards.target
    require_target(target)
    base = f"work/{scale}/videobert/{target}"
    inputs = {
        "perf_engine": f"{base}/perf_engine.measurements.json",
        "toolchain": f"{base}/perf_engine.toolchain.json",
    }
    if target != "cpu":  # the cpu target is the numeric reference itself
        inputs["numeric"] = f"{base}/numeric.measurements.json"
    if target_settings(config, target)["backend"] == "ixrt":
        bs = config["videobert"]["ixrtexec_batch_size"]
        inputs["ixrtexec"] = f"{base}/perf_bs{bs}.measurements.json"
    return inputs


def videobert_measurement_specs(wildcards, input):
    specs = [input.perf_engine]
    specs += [input[key] for key in ("numeric", "ixrtexec") if key in input.keys()]
    return " ".join(specs)


# ---- ActBERT -------------------------------------------------------------------------------

ACTBERT_PATCHES = sorted(str(p) for p in Path(workflow.basedir, "patches").glob("ppvideo/*.patch"))
ACTBERT_FULL = "data/full/actbert"


def actbert_full_entries():
    import yaml

    manifest = yaml.safe_load(Path(workflow.basedir, "manifests/actbert.yaml").read_text())
    return [entry["name"] for entry in manifest["entries"]]


def actbert_device(wildcards):
    """PaddleVideo's device for a target: cpu, or gpu for cuda (needs a CUDA build of paddle;
    the document forces gpu, patches/ppvideo/04 makes it a choice)."""
    hardware = target_settings(config, wildcards.target)["hardware"]
    if hardware not in ("cpu", "cuda"):
        raise ValueError(f"ActBERT runs on PaddlePaddle: target {wildcards.target!r} ({hardware}) has no paddle device")
    return "gpu" if hardware == "cuda" else "cpu"


def require_paddle_target(target):
    """Refuse, before any job runs, a target PaddlePaddle cannot run here (no silent fallback)."""
    from zoorepro.errors import ToolchainMissing

    hardware = target_settings(config, target)["hardware"]
    if hardware not in ("cpu", "cuda"):
        raise ToolchainMissing(f"ActBERT runs on PaddlePaddle (cpu or cuda); target {target!r} is {hardware}: "
                               "run `snakemake results/actbert_cpu.csv` instead")
    if hardware == "cuda" and not workflow.dryrun:
        import paddle

        if not paddle.device.is_compiled_with_cuda():
            raise ToolchainMissing(f"target {target!r} needs a CUDA build of PaddlePaddle (paddlepaddle-gpu) in "
                                   "place of the CPU build installed here; or run the portable target `cpu` "
                                   "(`snakemake results/actbert_cpu.csv`)")


def actbert_test_inputs(wildcards):
    if wildcards.scale == "mini":
        return {"data": "data/mini/actbert/MANIFEST.json", "weights": "data/mini/actbert/ActBERT-mini.pdparams",
                "config": "configs/actbert/mini_msrvtt.yaml"}
    inputs = {f"download_{name}": f"{ACTBERT_FULL}/.done/{name}" for name in actbert_full_entries()}
    return {**inputs, "config": "configs/actbert/actbert_msrvtt.yaml"}


def actbert_test_args(wildcards, input):
    """The document's -c/-w, with the data paths of this scale (the mini config names its own)."""
    if wildcards.scale == "mini":
        return f"-c {input.config} -w {input.weights}"
    return (f"-c {input.config} -w {ACTBERT_FULL}/ActBERT.pdparams --file-path {ACTBERT_FULL}/MSRVTT_JSFUSION_test.csv "
            f"--features-path {ACTBERT_FULL}/features/msrvtt_test.lmdb --vocab-dir {ACTBERT_FULL}/bert-base-uncased")


def actbert_pretrain_inputs(wildcards):
    if wildcards.scale == "mini":
        return {"data": "data/mini/actbert/MANIFEST.json", "bert": "data/mini/actbert/bert-mini.pdparams",
                "config": "configs/actbert/mini_pretrain.yaml"}
    inputs = {f"download_{name}": f"{ACTBERT_FULL}/.done/{name}" for name in actbert_full_entries()}
    return {**inputs, "config": "configs/actbert/actbert.yaml"}


def actbert_pretrain_args(wildcards, input):
    if wildcards.scale == "mini":
        return f"-c {input.config} --device cpu --max-steps {config['actbert']['pretrain_steps']}"
    data = f"{ACTBERT_FULL}/howto100m"
    return (f"-c {input.config} --device gpu --vocab-dir {ACTBERT_FULL}/bert-base-uncased "
            f"--pretrained {ACTBERT_FULL}/bert-base-uncased.pdparams "
            f"-o DATASET.train.file_path={data}/actbert_train_data.npy "
            f"-o PIPELINE.train.transform.1.RandomCap.caption_path={data}/caption_train.json "
            f"-o PIPELINE.valid.transform.1.RandomCap.caption_path={data}/caption_val.json")


def actbert_table_inputs(wildcards):
    scale, target = scale_of(wildcards), wildcards.target
    require_paddle_target(target)
    base = f"work/{scale}/actbert/{target}"
    inputs = {"test": f"{base}/test.measurements.json", "toolchain": f"{base}/metrics.json"}
    if scale == "mini":  # full-scale pretraining is a target of its own (days on 8 GPUs)
        inputs["pretrain"] = f"work/{scale}/actbert/pretrain/loss.measurements.json"
    return inputs


def actbert_measurement_specs(wildcards, input):
    scale, target = scale_of(wildcards), wildcards.target
    specs = [f"{input.test}=work/{scale}/actbert/{target}/test"]
    if "pretrain" in input.keys():
        specs.append(input.pretrain)
    return " ".join(specs)
