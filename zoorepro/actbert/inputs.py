"""The input and params functions of rules/actbert.smk (see zoorepro/workflow.py)."""
from __future__ import annotations

from zoorepro.actbert.pipeline import RUNNER
from zoorepro.runners import get_runner
from zoorepro.workflow import ModelInputs

FULL = "data/full/actbert"
CONFIGS = "zoorepro/actbert/configs"


class Inputs(ModelInputs):
    model = "actbert"

    def device(self, wildcards) -> str:
        """PaddleVideo's device for a target, from the paddle runner (the document forces gpu;
        patches/ppvideo/04 makes it a choice)."""
        return get_runner(RUNNER, wildcards.target, self.config).device

    def test_inputs(self, wildcards) -> dict:
        if wildcards.scale == "mini":
            return {"data": "data/mini/actbert/MANIFEST.json", "weights": "data/mini/actbert/ActBERT-mini.pdparams",
                    "config": f"{CONFIGS}/mini_msrvtt.yaml"}
        return {**self.full_data(), "config": f"{CONFIGS}/actbert_msrvtt.yaml"}

    def test_args(self, wildcards, input) -> str:
        """The document's -c/-w, with the data paths of this scale (the mini config names its own)."""
        if wildcards.scale == "mini":
            return f"-c {input.config} -w {input.weights}"
        return (f"-c {input.config} -w {FULL}/ActBERT.pdparams --file-path {FULL}/MSRVTT_JSFUSION_test.csv "
                f"--features-path {FULL}/features/msrvtt_test.lmdb --vocab-dir {FULL}/bert-base-uncased")

    def pretrain_inputs(self, wildcards) -> dict:
        if wildcards.scale == "mini":
            return {"data": "data/mini/actbert/MANIFEST.json", "bert": "data/mini/actbert/bert-mini.pdparams",
                    "config": f"{CONFIGS}/mini_pretrain.yaml"}
        return {**self.full_data(), "config": f"{CONFIGS}/actbert.yaml"}

    def pretrain_args(self, wildcards, input) -> str:
        if wildcards.scale == "mini":
            return f"-c {input.config} --device cpu --max-steps {self.params['pretrain_steps']}"
        data = f"{FULL}/howto100m"
        return (f"-c {input.config} --device gpu --vocab-dir {FULL}/bert-base-uncased "
                f"--pretrained {FULL}/bert-base-uncased.pdparams "
                f"-o DATASET.train.file_path={data}/actbert_train_data.npy "
                f"-o PIPELINE.train.transform.1.RandomCap.caption_path={data}/caption_train.json "
                f"-o PIPELINE.valid.transform.1.RandomCap.caption_path={data}/caption_val.json")

    def table(self, wildcards) -> dict:
        scale, target = self.scale(wildcards), wildcards.target
        base = f"work/{scale}/actbert/{target}"
        measurements = [f"{base}/test.measurements.json"]
        if scale == "mini":  # full-scale pretraining is a target of its own (days on 8 GPUs)
            measurements.append(f"work/{scale}/actbert/pretrain/loss.measurements.json")
        return {"measurements": measurements, "toolchain": f"{base}/metrics.json"}
