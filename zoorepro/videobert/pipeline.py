"""VideoBERT on Iluvatar IxRT with ByteMLPerf (000_94813fe2aa136b00.txt): the model's registry
entry (zoorepro/models.py). Its rules: rules/videobert.smk; its data: manifests/videobert.yaml."""
from __future__ import annotations

from zoorepro import dvcgen
from zoorepro.backends import get_backend

DOCUMENT = "000_94813fe2aa136b00.txt"
RUNNER = None  # run from ONNX by the target's backend (ByteMLPerf's harness where it has one)
# The accuracy metrics its claims may name (claims/claims.yaml; throughput is every model's).
CLAIM_METRICS = ("top1",)
# Distributions its tables record in provenance, beside the common ones (zoorepro/provenance.py).
PROVENANCE_PACKAGES = ()


def dvc_stages(params: dict, scale: str) -> dict:
    work = f"work/{scale}/videobert"
    stages = {}
    if scale == "mini":
        stages["videobert_data_mini"] = {
            "cmd": dvcgen.cmd(["data/mini/videobert/MANIFEST.json"]),
            "deps": ["zoorepro/videobert/make_mini.py"],
            "params": ["videobert.mini"],
            "outs": ["data/mini/videobert"],
        }
        stages["videobert_export_mini"] = {
            "cmd": dvcgen.cmd([f"{work}/onnx/video-bert.onnx"]),
            "deps": ["data/mini/videobert", "zoorepro/videobert/export_onnx.py"],
            "params": ["videobert.opset"],
            "outs": [f"{work}/onnx"],
        }
        model_deps = ["data/mini/videobert", f"{work}/onnx"]
    else:
        stages.update(dvcgen.download_stage("videobert"))
        model_deps = ["data/full/videobert"]
    reference = params["videobert"]["compare"]["reference"]

    def deps(target: str) -> list[str]:
        extra = [] if target == reference else [f"{work}/{reference}"]
        return [*model_deps, *extra, "workloads", "zoorepro/videobert", "rules/videobert.smk"]

    def stage_params(target: str) -> list[str]:
        extra = ["videobert.ixrtexec", "videobert.ixrtexec_batch_size", "videobert.input_shapes"]
        return extra if get_backend(target, params).compile_tool == "ixrtexec" else []

    for target in dvcgen.table_targets(params, "videobert", scale):
        stages.update(dvcgen.table_stage("videobert", scale, target, deps(target),
                                         ["videobert.task", "videobert.compare", *stage_params(target)]))
    return stages
