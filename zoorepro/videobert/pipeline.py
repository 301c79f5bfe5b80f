"""VideoBERT on Iluvatar IxRT with ByteMLPerf (000_94813fe2aa136b00.txt): the model's registry
entry (zoorepro/models.py). Its rules: rules/videobert.smk; its data: manifests/videobert.yaml."""
from __future__ import annotations

import json
from pathlib import Path

from zoorepro import dvcgen
from zoorepro.backends import get_backend

DOCUMENT = "000_94813fe2aa136b00.txt"
RUNNER = None  # run from ONNX by the target's backend (ByteMLPerf's harness where it has one)
# The accuracy metrics its claims may name (claims/claims.yaml; throughput is every model's).
CLAIM_METRICS = ("top1",)
# Distributions its tables record in provenance, beside the common ones (zoorepro/provenance.py).
PROVENANCE_PACKAGES = ()
# Shape scale: video-bert.onnx's graph at real sizes (CLIP ViT-B/32's, assumed), random weights.
SCALES = ("mini", "full", "shape")
WORKLOADS = Path(__file__).resolve().parents[2] / "workloads"


def check_params(block: dict) -> list[str]:
    """The task must be a shipped ByteMLPerf workload (workloads/<task>.json and its model-zoo
    entry). The mini generator plants Top-1 over all its images; perf_engine scores floor(N / bs)
    batches of the workload's first batch size, times data_percent: both must cover every image."""
    path = WORKLOADS / f"{block['task']}.json"
    if not path.is_file() or not (WORKLOADS / "model_zoo" / path.name).is_file():
        shipped = sorted(p.stem for p in WORKLOADS.glob("*.json") if (WORKLOADS / "model_zoo" / p.name).is_file())
        return [f"task: {block['task']!r} has no workloads/{path.name} with its workloads/model_zoo/{path.name} "
                f"(shipped: {', '.join(shipped)})"]
    workload = json.loads(path.read_text())
    n, bs = block["mini"]["n_images"], workload["batch_sizes"][0]
    problems = []
    if n % bs:
        problems.append(f"mini.n_images: {n} is not a multiple of the workload's accuracy batch size {bs}, "
                        f"so perf_engine would not score every planted image")
    if workload["data_percent"] not in (0, 100):
        problems.append(f"workloads/{path.name}: data_percent {workload['data_percent']} scores a part of the "
                        "mini images, but the planted Top-1 is over all of them")
    return problems


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
