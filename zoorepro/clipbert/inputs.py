"""The input and params functions of rules/clipbert.smk (see zoorepro/workflow.py)."""
from __future__ import annotations

import json

from zoorepro.clipbert.run_video_qa import AMP_PRECISION
from zoorepro.workflow import ModelInputs

MODEL = "clipbert"
# the full-scale ANetQA release's check record (zoorepro/clipbert/check_anetqa.py), in the prep
# folder; the release itself (data/full/clipbert/dataset/) is in .dvcignore, out of DVC's cache
ANETQA_RELEASE = f"work/full/{MODEL}/prep/anetqa_release.json"


def data_dir(scale: str) -> str:
    return f"data/{scale}/{MODEL}"


def prep_dir(scale: str) -> str:
    """The document's data preparation, shared by every target: dataset/ (select_videos), img/
    (sample_imgs_clipbert), csv/ (aux_csv), txt/ (aux_jsonl), the run config and model config."""
    return f"work/{scale}/{MODEL}/prep"


# The files the steps name on their command lines, per scale: the mini generator's, or the full
# downloads (manifests/clipbert.yaml) and the ANetQA release the user unpacks (dataset/).
def paths(scale: str) -> dict[str, str]:
    data = data_dir(scale)
    common = {"dataset": f"{data}/dataset",
              "ans2label": f"{data}/txt/anetqa_trainval_ans2label.json",
              "e2e_weights": f"{data}/pretrained/clipbert_image_text_pretrained.pt"}
    if scale == "mini":
        return {**common, "videos": f"{data}/videos", "model_config": f"{data}/model_config.json",
                "tokenizer": f"{data}/pretrained/bert-base-uncased"}
    # full, and shape (make_shape writes the full layout: synthetic videos, random e2e weights)
    return {**common, "videos": f"{data}/dataset/video", "model_config": "base",
            "tokenizer": f"{data}/bert-base-uncased"}


class Inputs(ModelInputs):
    model = MODEL

    # ---- data ------------------------------------------------------------------------------

    def data(self, wildcards) -> dict:
        """The generated mini set; at full scale the verified downloads and the check record of the
        ANetQA release (videos and QA files, which no URL serves: the user unpacks them)."""
        if wildcards.scale in ("mini", "shape"):
            return {"data": f"{data_dir(wildcards.scale)}/MANIFEST.json"}
        return {**self.full_data(), "anetqa": ANETQA_RELEASE}

    def anetqa_files(self, wildcards) -> list[str]:
        """The release's QA and meta files that exist (so Snakemake reruns the check when they
        change); none missing is an error here: the check job names what is missing."""
        from zoorepro.clipbert.check_anetqa import NEEDED

        dataset = paths("full")["dataset"]
        return [f"{dataset}/{name}" for name in NEEDED if name != "video" and (self.root / dataset / name).is_file()]

    @staticmethod
    def path(name: str):
        """A params function: the path `name` of this scale (paths), for a rule's command line."""
        return lambda wildcards: paths(wildcards.scale)[name]

    def subset_arg(self, wildcards) -> str:
        n = self.params["video_subset"] if wildcards.scale == "full" else None
        return f"--video_subset {n}" if n else ""

    def frame_size(self, wildcards) -> int:
        return self.params["frames"]["size"][wildcards.scale]

    def hyper(self, wildcards) -> str:
        """The run config's hyperparameters at this scale, one JSON object (make_config --hyper)."""
        return json.dumps(self.params["finetune"][wildcards.scale], sort_keys=True)

    def e2e_arg(self, wildcards) -> str:
        return f"--e2e_weights_path {paths(wildcards.scale)['e2e_weights']}"

    # ---- targets and launch ----------------------------------------------------------------

    def launch(self, wildcards) -> str:
        """The document's `horovodrun -np N python src/tasks/run_video_qa.py`: N torchrun processes
        (`clipbert.nproc.<kind>`), plain `python -m` for one."""
        nproc = self.params["nproc"][self.hardware(wildcards.target)]
        command = self.runner(wildcards.target).launch_command("zoorepro.clipbert.run_video_qa", [], nproc)
        return " ".join(["python", *command[1:]])

    # ---- inference -------------------------------------------------------------------------

    def checkpoint(self, wildcards) -> dict:
        """What inference reads: mini, the generator's planted release (ClipBERT's layout); full,
        this target's finetune."""
        if wildcards.scale == "mini":
            return {"checkpoint": f"{data_dir('mini')}/MANIFEST.json"}
        return {"checkpoint": f"work/{wildcards.scale}/{MODEL}/{wildcards.target}/finetune"}

    @staticmethod
    def checkpoint_dir(wildcards) -> str:
        if wildcards.scale == "mini":
            return f"{data_dir('mini')}/released"
        return f"work/{wildcards.scale}/{MODEL}/{wildcards.target}/finetune"

    def inference_batch_size(self, wildcards) -> int:
        """The document's --inference_batch_size 64; at shape scale on a CPU `clipbert.shape`'s (the
        full-size model's activations at 64 questions of 16 frames do not fit this machine)."""
        on_cpu = self.hardware(wildcards.target) == "cpu"
        if wildcards.scale == "shape" and on_cpu:
            return self.params["shape"]["inference_batch_size"]
        return self.params["inference"]["batch_size"]

    # ---- % of peak -------------------------------------------------------------------------

    def peak(self, wildcards) -> dict:
        """The target's peak (rules/peaks.smk) on a CPU; on cuda each process reads its GPU's
        peak by name (run_video_qa)."""
        if self.hardware(wildcards.target) == "cpu":
            return {"peak": f"work/{wildcards.scale}/{MODEL}/{wildcards.target}/peak.json"}
        return {}

    @staticmethod
    def peak_arg(wildcards, input) -> str:
        return f"--peak {input.peak}" if "peak" in input.keys() else ""

    @staticmethod
    def throughput_only_arg(wildcards) -> str:
        """Shape scale: no loss rows (random weights, synthetic frames)."""
        return "--throughput-only" if wildcards.scale == "shape" else ""

    def precision(self, wildcards) -> str:
        fp16 = self.params["finetune"][wildcards.scale]["fp16"]
        return AMP_PRECISION if fp16 and self.hardware(wildcards.target) == "cuda" else "float32"

    # ---- what the table joins --------------------------------------------------------------

    def table(self, wildcards) -> dict:
        """Accuracy (eval_res) and the runs' timings at mini and full scale; timings only at shape."""
        scale, target = self.scale(wildcards), wildcards.target
        base = f"work/{scale}/{MODEL}/{target}"
        accuracy = [] if scale == "shape" else [f"{base}/eval_res.measurements.json"]
        return {"measurements": [*accuracy, f"{base}/inference.measurements.json",
                                 f"{base}/inference_test.measurements.json", f"{base}/finetune.measurements.json"],
                "toolchain": f"{base}/toolchain.json"}
