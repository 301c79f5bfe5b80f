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
