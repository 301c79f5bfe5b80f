"""ActBERT text-to-video retrieval on MSR-VTT with PaddleVideo (004_1d93f0d998946b96.txt): the
model's registry entry (zoorepro/models.py). Its rules: rules/actbert.smk; its data:
manifests/actbert.yaml; PaddleVideo's configs: zoorepro/actbert/configs/."""
from __future__ import annotations

from zoorepro import dvcgen

# mini, full, and shape: the released model's sizes with random weights and synthetic test inputs
# of the real shapes (make_shape), throughput only
SCALES = ("mini", "full", "shape")
DOCUMENT = "004_1d93f0d998946b96.txt"
RUNNER = "paddle"  # PaddleVideo's main.py runs in paddle itself (zoorepro/runners/paddle.py)
# The accuracy metrics its claims may name (claims/claims.yaml; throughput is every model's).
CLAIM_METRICS = ("R@1", "R@5", "R@10", "MedianR", "MeanR")
# Distributions its tables record in provenance, beside the common ones (zoorepro/provenance.py).
PROVENANCE_PACKAGES = ("paddlepaddle", "paddlenlp", "ppvideo")

# The FLAGS the document exports for its AMP variant (004_1d93f0d998946b96.txt, "AMP is useful for
# speeding up training"); the pretraining rule sets them with main.py --amp
# when params actbert.amp is true (zoorepro/actbert/inputs.py).
AMP_FLAGS = {"FLAGS_conv_workspace_size_limit": "800", "FLAGS_cudnn_exhaustive_search": "1",
             "FLAGS_cudnn_batchnorm_spatial_persistent": "1"}


def dvc_stages(params: dict, scale: str) -> dict:
    work = f"work/{scale}/actbert"
    stages = dvcgen.sources_stage("actbert")
    table_deps = [f"data/{scale}/actbert", "work/src/actbert", "zoorepro/actbert", "rules/actbert.smk"]
    if scale == "mini":
        stages["actbert_data_mini"] = {
            "cmd": dvcgen.cmd(["data/mini/actbert/MANIFEST.json", "data/mini/actbert/ActBERT-mini.pdparams",
                               "data/mini/actbert/bert-mini.pdparams", "data/mini/actbert/planted_claims.yaml"]),
            "deps": ["work/src/actbert", "zoorepro/actbert/configs", "zoorepro/actbert/make_mini_data.py",
                     "zoorepro/actbert/make_mini_model.py", "zoorepro/actbert/plant.py", "zoorepro/planted.py"],
            "params": ["actbert.mini"],
            "outs": ["data/mini/actbert"],
        }
        stages["actbert_pretrain_mini"] = {
            "cmd": dvcgen.cmd([f"{work}/pretrain/loss.measurements.json"]),
            "deps": ["data/mini/actbert", "work/src/actbert", "zoorepro/actbert/configs",
                     "zoorepro/actbert/pretrain.py", "zoorepro/actbert/main.py", "zoorepro/actbert/loss_measurements.py",
                     "zoorepro/runners", "rules/actbert.smk"],
            "params": ["actbert.pretrain_steps", "actbert.seed", "actbert.amp", "actbert.pretrain"],
            "outs": [f"{work}/pretrain"],
        }
        table_deps.append(f"{work}/pretrain")
    elif scale == "shape":
        stages["actbert_data_shape"] = {
            "cmd": dvcgen.cmd(["data/shape/actbert/MANIFEST.json"]),
            "deps": ["work/src/actbert", "zoorepro/actbert/configs/actbert_msrvtt.yaml",
                     "zoorepro/actbert/make_shape.py", "zoorepro/actbert/make_mini_data.py"],
            "params": ["actbert.shape.seed", "actbert.shape.n_videos"],
            "outs": ["data/shape/actbert"],
        }
    else:
        stages.update(dvcgen.download_stage("actbert"))
    for target in dvcgen.table_targets(params, "actbert", scale):
        stages.update(dvcgen.table_stage("actbert", scale, target, table_deps,
                                         ["actbert.seed"] + (["actbert.shape"] if scale == "shape" else [])))
    return stages
