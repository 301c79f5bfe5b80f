"""ViLBERT VQA on Ascend 310P3/310 (002_96a57c031fd5d3aa.txt): the model's registry entry
(zoorepro/models.py). Its rules: rules/vilbert.smk; its data: manifests/vilbert.yaml."""
from __future__ import annotations

from zoorepro import dvcgen

# mini, full, and shape: the full-size architecture with random weights (make_shape), throughput only
SCALES = ("mini", "full", "shape")
DOCUMENT = "002_96a57c031fd5d3aa.txt"
RUNNER = None  # compiled from ONNX by the target's backend
# The accuracy metrics its claims may name (claims/claims.yaml; throughput is every model's).
CLAIM_METRICS = ("precision", "recall", "fscore", "vqa_score")
# Distributions its tables record in provenance, beside the common ones (zoorepro/provenance.py).
PROVENANCE_PACKAGES = ("allennlp", "allennlp-models")


def check_params(block: dict) -> list[str]:
    if block["accuracy_batch_size"] not in block["batch_sizes"]:
        return [f"accuracy_batch_size: {block['accuracy_batch_size']} is not one of batch_sizes {block['batch_sizes']}"]
    return []


def dvc_stages(params: dict, scale: str) -> dict:
    vil = params["vilbert"]
    work = f"work/{scale}/vilbert"
    stages = dvcgen.sources_stage("vilbert")
    if scale == "mini":
        stages["vilbert_data_mini"] = {
            "cmd": dvcgen.cmd(["data/mini/vilbert/MANIFEST.json"]),
            "deps": ["work/src/vilbert", "zoorepro/vilbert/make_mini.py"],
            "params": ["vilbert.mini"],
            "outs": ["data/mini/vilbert"],
        }
    else:
        stages.update(dvcgen.download_stage("vilbert"))
    sim_fix = [f"{work}/onnx/vqa-vilbert_bs{bs}_sim_fix.onnx" for bs in vil["batch_sizes"]]
    stages[f"vilbert_prepare_{scale}"] = {
        "cmd": dvcgen.cmd([f"{work}/preprocessed", *sim_fix, f"{work}/onnx/golden/outputs"]),
        "deps": [f"data/{scale}/vilbert", "work/src/vilbert", "zoorepro/vilbert", "zoorepro/steps/simplify.py",
                 "zoorepro/steps/infer.py", "rules/vilbert.smk"],
        "params": ["vilbert.batch_sizes", "vilbert.pad_len", "vilbert.box_num", "vilbert.opset",
                   "vilbert.compare.samples", "vilbert.full.question_subset"],
        "outs": [f"{work}/preprocessed", f"{work}/onnx"],
    }
    for target in dvcgen.table_targets(params, "vilbert", scale):
        stages.update(dvcgen.table_stage(
            "vilbert", scale, target, [f"{work}/preprocessed", f"{work}/onnx", "zoorepro/vilbert", "rules/vilbert.smk"],
            ["vilbert.accuracy_batch_size", "vilbert.compile_args", "vilbert.compare", "vilbert.perf"]))
    return stages
