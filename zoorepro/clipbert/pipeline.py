"""ClipBERT finetuned and evaluated on ANetQA (003_1ad379d98147290d.txt): the model's registry
entry (zoorepro/models.py). Its rules: rules/clipbert.smk; its downloads: manifests/clipbert.yaml;
its steps are named as the document names them (sample_imgs_clipbert, aux_csv, aux_jsonl,
run_video_qa, eval_res) and run on the project's own ClipBERT (model.py): ClipBERT, anetqa-code,
detectron2 and apex are not installable packages."""
from __future__ import annotations

from zoorepro import dvcgen

# mini, full, and shape: the full-size model with random weights on generated videos at the
# document's frame counts and sizes (make_shape), through the full scale's steps; throughput only
SCALES = ("mini", "full", "shape")
DOCUMENT = "003_1ad379d98147290d.txt"
# torch (the project's ClipBERT) on cpu and cuda; the document's horovodrun -np N is N torchrun
# processes (zoorepro/runners/transformers.py launches them).
RUNNER = {"cpu": "transformers", "cuda": "transformers"}
# eval_res's categories that claims may name: the ANetQA taxonomy values the mini generator plants
# (the full val set has more; their rows carry no claim).
CATEGORIES = {"structure": ("query", "verify"), "semantics": ("attribute", "object", "action"),
              "skill": ("object-attribute", "superlative", "exist", "temporal"),
              "answer type": ("open", "binary")}
ACCURACY = "accuracy"     # eval_res overall, ANetQA val
# The ANetQA authors' other splits (scored by their server: no answers are published, never measured here).
TEST_SPLITS = ("test-tiny", "test-dev", "test")
CLAIM_METRICS = (ACCURACY, *(f"{split} accuracy" for split in TEST_SPLITS),
                 *(f"accuracy {group}: {name}" for group, names in CATEGORIES.items() for name in names))
PROVENANCE_PACKAGES = ("torch", "transformers", "tokenizers", "av")


def dvc_stages(params: dict, scale: str) -> dict:
    data, work = f"data/{scale}/clipbert", f"work/{scale}/clipbert"
    stages = {}
    if scale == "mini":
        stages["clipbert_data_mini"] = {
            "cmd": dvcgen.cmd([f"{data}/MANIFEST.json"]),
            "deps": ["zoorepro/clipbert/make_mini_data.py", "zoorepro/clipbert/model.py",
                     "zoorepro/clipbert/sample_imgs_clipbert.py", "zoorepro/planted.py"],
            "params": ["clipbert.mini"],
            "outs": [data],
        }
    elif scale == "shape":
        stages["clipbert_data_shape"] = {
            "cmd": dvcgen.cmd([f"{data}/MANIFEST.json"]),
            "deps": ["zoorepro/clipbert/make_shape.py", "zoorepro/clipbert/make_mini_data.py",
                     "zoorepro/clipbert/model.py"],
            "params": ["clipbert.shape"],
            "outs": [data],
        }
    else:
        stages.update(dvcgen.download_stage("clipbert"))
    # the document's data preparation, shared by every target's table
    stages[f"clipbert_prep_{scale}"] = {
        "cmd": dvcgen.cmd([f"{work}/prep/txt", f"{work}/prep/img", f"{work}/prep/anetqa_frameqa_base_resnet50.json"]),
        "deps": [data, "zoorepro/clipbert/sample_imgs_clipbert.py", "zoorepro/clipbert/aux_csv.py",
                 "zoorepro/clipbert/aux_jsonl.py", "zoorepro/clipbert/make_config.py", "zoorepro/clipbert/anetqa.py",
                 "zoorepro/clipbert/select_videos.py", "zoorepro/clipbert/check_anetqa.py"],
        "params": ["clipbert.frames", f"clipbert.finetune.{scale}", "clipbert.video_subset"],
        # full scale: the sampled frames of ~14,000 videos (hundreds of GB), rebuilt from the videos
        # rather than copied into DVC's cache, and persistent: DVC removes a stage's outs before it
        # reruns it, which would resample every video for a new learning rate (Snakemake and the
        # lineage records decide what to rebuild); mini: cached, so a clone's `dvc pull` restores them
        "outs": [f"{work}/prep" if scale != "full" else {f"{work}/prep": {"cache": False, "persist": True}}],
    }
    for target in dvcgen.table_targets(params, "clipbert", scale):
        stages.update(dvcgen.table_stage("clipbert", scale, target,
                                         [data, f"{work}/prep", "zoorepro/clipbert", "zoorepro/runners",
                                          "rules/clipbert.smk"],
                                         ["clipbert.finetune", "clipbert.inference", "clipbert.nproc",
                                          *(["clipbert.shape"] if scale == "shape" else [])]))
    return stages
