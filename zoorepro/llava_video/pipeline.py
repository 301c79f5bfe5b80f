"""LLaVA-NeXT-Video (five checkpoints) on Video-Bench, MindIE-LLM on an Ascend NPU against
transformers on a GPU (001_c4605a925f123fda.txt): the model's registry entry (zoorepro/models.py).
Its rules: rules/llava_video.smk; its data: manifests/llava_video.yaml; its steps are
named as the document names them (extract_dataset, llava_gpu, run_pa_videobench,
llava_video_precision_test)."""
from __future__ import annotations

from zoorepro import dvcgen

DOCUMENT = "001_c4605a925f123fda.txt"
# mini, full, and shape: the real architecture at its real sizes with random weights and synthetic
# videos (make_shape), through the full scale's extract_dataset and inference steps; throughput only.
SCALES = ("mini", "full", "shape")
# The framework that answers the questions, per hardware kind: transformers' LlavaNextVideo classes
# on cpu/cuda (the document's llava_gpu), MindIE-LLM on the NPU (its run_pa_videobench.sh).
RUNNER = {"cpu": "transformers", "cuda": "transformers", "npu": "mindie"}
# The document's NPU script, under examples/atb_models of a MindIE-LLM checkout (zoorepro/runners/mindie.py).
MINDIE_SCRIPT = "examples/models/llava/llava_videobench/run_pa_videobench.sh"
CHECKPOINTS = ("7B", "7B-32K", "7B-DPO", "34B", "34B-DPO")
# Per-checkpoint metric names (the tables carry one row set per checkpoint: "<ckpt> <metric>").
ACCURACY = "accuracy"                      # corrected reading: A-F, unparseable counted wrong
FINAL_SCORE = "Video-Bench final score"    # Video-Bench's weighted levels (videobench_score)
DOC_GPU = "GPU accuracy (document reading)"
DOC_NPU = "NPU accuracy (document reading)"
GAP = "|NPU-GPU| accuracy gap"              # the document's implicit claim: the NPU answers as well
DOC_GAP = "|NPU-GPU| accuracy gap (document reading)"
AGREEMENT = "NPU-GPU same answer"
PER_CKPT = (ACCURACY, FINAL_SCORE, DOC_GPU, DOC_NPU, GAP, DOC_GAP, AGREEMENT)


def metric(ckpt: str, name: str) -> str:
    return f"{ckpt} {name}"


# The accuracy metrics its claims may name (claims/claims.yaml, planted claims).
CLAIM_METRICS = tuple(metric(c, m) for c in CHECKPOINTS for m in PER_CKPT)
# The metrics that set the NPU against the GPU (the report's agreement figure, zoorepro/figures.py).
AGREEMENT_METRICS = tuple(metric(c, m) for c in CHECKPOINTS for m in (GAP, DOC_GAP, AGREEMENT))
PROVENANCE_PACKAGES = ("transformers", "tokenizers", "av", "huggingface_hub", "safetensors")


def check_params(block: dict) -> list[str]:
    problems = [f"checkpoints: unknown checkpoint {c!r} (known: {', '.join(CHECKPOINTS)})"
                for c in block["checkpoints"] if c not in CHECKPOINTS]
    problems += [f"shape.checkpoints: {c!r} is not in checkpoints (the rules' checkpoint names)"
                 for c in block["shape"]["checkpoints"] if c not in block["checkpoints"]]
    return problems


def dvc_stages(params: dict, scale: str) -> dict:
    block = params["llava_video"]
    data = f"data/{scale}/llava_video"
    code = ["zoorepro/llava_video", "zoorepro/runners", "rules/llava_video.smk"]
    stages = {}
    if scale == "mini":
        stages["llava_video_data_mini"] = {
            "cmd": dvcgen.cmd([f"{data}/MANIFEST.json"]),
            "deps": ["zoorepro/llava_video/make_mini_data.py", "zoorepro/llava_video/make_mini_model.py",
                     "zoorepro/llava_video/plant.py", "zoorepro/llava_video/videobench.py",
                     "zoorepro/planted.py"],
            "params": ["llava_video.mini", "llava_video.max_new_tokens", "llava_video.frames",
                       "llava_video.checkpoints"],
            "outs": [data],
        }
    else:
        stages.update(dvcgen.download_stage("llava_video"))
    # extract_dataset's sample, shared by every target's table (the NPU's answers are judged on the
    # same questions as the GPU's).
    sample = f"work/{scale}/llava_video/sample"
    stages[f"llava_video_sample_{scale}"] = {
        "cmd": dvcgen.cmd([f"{sample}/Video-Bench/Eval_QA/sampling_datasets_QA_new.json"]),
        "deps": [data, "zoorepro/llava_video/extract_dataset.py", "zoorepro/llava_video/videobench.py"],
        "params": ["llava_video.sampling"],
        "outs": [sample],
    }
    for target in dvcgen.table_targets(params, "llava_video", scale):
        deps = [data, sample, *code]
        if target != block["reference"][scale]:
            deps.append(f"work/{scale}/llava_video/{block['reference'][scale]}")
        stages.update(dvcgen.table_stage("llava_video", scale, target, deps,
                                         ["llava_video.checkpoints", "llava_video.dtype",
                                          "llava_video.sampling", "llava_video.max_new_tokens",
                                          "llava_video.gpu", "llava_video.npu"]))
    return stages
