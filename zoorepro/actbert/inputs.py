"""The input and params functions of rules/actbert.smk (see zoorepro/workflow.py)."""
from __future__ import annotations

from zoorepro.actbert.pipeline import AMP_FLAGS, RUNNER
from zoorepro.errors import ConfigError
from zoorepro.runners import get_runner
from zoorepro.workflow import ModelInputs

FULL = "data/full/actbert"
SHAPE = "data/shape/actbert"
CONFIGS = "zoorepro/actbert/configs"
# The files the steps name on their command lines, per scale: the mini generator's (the mini
# configs name the same), the document's downloads (manifests/actbert.yaml) and the shape
# generator's (zoorepro/actbert/make_shape.py: real sizes, random weights; the test only).
PATHS = {
    "mini": {"weights": "data/mini/actbert/ActBERT-mini.pdparams",
             "captions": "data/mini/actbert/MSRVTT_JSFUSION_test.csv",
             "features": "data/mini/actbert/msrvtt_test.lmdb",
             "vocab": "data/mini/actbert/bert-vocab",
             "bert": "data/mini/actbert/bert-mini.pdparams",
             "train_data": "data/mini/actbert/howto100m/actbert_train_data.npy",
             "caption_train": "data/mini/actbert/howto100m/caption_train.json",
             "caption_val": "data/mini/actbert/howto100m/caption_val.json"},
    "full": {"weights": f"{FULL}/ActBERT.pdparams",
             "captions": f"{FULL}/MSRVTT_JSFUSION_test.csv",
             "features": f"{FULL}/features/msrvtt_test.lmdb",
             "vocab": f"{FULL}/bert-base-uncased",
             "bert": f"{FULL}/bert-base-uncased.pdparams",
             "train_data": f"{FULL}/howto100m/actbert_train_data.npy",
             "caption_train": f"{FULL}/howto100m/caption_train.json",
             "caption_val": f"{FULL}/howto100m/caption_val.json"},
    "shape": {"weights": f"{SHAPE}/ActBERT-shape.pdparams",
              "captions": f"{SHAPE}/MSRVTT_JSFUSION_test.csv",
              "features": f"{SHAPE}/msrvtt_test.lmdb",
              "vocab": f"{SHAPE}/bert-vocab"},
}


class Inputs(ModelInputs):
    model = "actbert"

    def device(self, wildcards) -> str:
        """PaddleVideo's device for a target, from the paddle runner (the document forces gpu;
        patches/ppvideo/04 makes it a choice)."""
        return get_runner(RUNNER, wildcards.target, self.config).device

    def test_inputs(self, wildcards) -> dict:
        """The config and the data the test reads: the generated files (the weights are a job's
        output), or the stamps of the verified downloads whose files PATHS names."""
        if wildcards.scale == "mini":
            return {"data": "data/mini/actbert/MANIFEST.json", "weights": PATHS["mini"]["weights"],
                    "config": self.test_config(wildcards)}
        if wildcards.scale == "shape":
            return {"data": f"{SHAPE}/MANIFEST.json", "weights": PATHS["shape"]["weights"],
                    "config": self.test_config(wildcards)}
        return {**self.full_data(), "config": self.test_config(wildcards)}

    @staticmethod
    def test_config(wildcards) -> str:
        """The test config of a scale: the mini model's, or the document's (full and shape: the
        released model's sizes)."""
        return f"{CONFIGS}/mini_msrvtt.yaml" if wildcards.scale == "mini" else f"{CONFIGS}/actbert_msrvtt.yaml"

    def test_args(self, wildcards) -> str:
        """Shape scale: score the first `actbert.shape.captions` captions, each against every video
        (the real batch), and no accuracy rows (random weights); other scales: every caption."""
        if wildcards.scale != "shape":
            return ""
        return f"--captions {self.params['shape']['captions']} --throughput-only"

    def pretrain_inputs(self, wildcards) -> dict:
        if wildcards.scale == "mini":
            return {"data": "data/mini/actbert/MANIFEST.json", "bert": PATHS["mini"]["bert"],
                    "config": f"{CONFIGS}/mini_pretrain.yaml"}
        return {**self.full_data(), "config": f"{CONFIGS}/actbert.yaml"}

    @staticmethod
    def path(name: str):
        """A params function: the file `name` of this scale (PATHS), for a rule's command line."""
        return lambda wildcards: PATHS[wildcards.scale][name]

    # ---- the pretraining launch (rules/actbert.smk actbert_pretrain) -------------------------

    def pretrain_runner(self, wildcards):
        """The paddle runner of the pretraining's target at this scale (`actbert.pretrain.<scale>.
        target`: the document's 8 GPUs are `cuda`, the mini run is `cpu`)."""
        return get_runner(RUNNER, self.params["pretrain"][wildcards.scale]["target"], self.config)

    def pretrain_device(self, wildcards) -> str:
        """paddle's device for the pretraining target (cpu or gpu)."""
        return self.pretrain_runner(wildcards).device

    def pretrain_steps(self, wildcards) -> int:
        """Mini: `actbert.pretrain_steps` steps; full: the config's whole schedule (0 = no limit)."""
        return self.params["pretrain_steps"] if wildcards.scale == "mini" else 0

    def launch_devices(self, wildcards) -> str:
        """paddle.distributed.launch's device option for `actbert.pretrain.<scale>.devices`: the
        document's `--gpus="0,1,2,3,4,5,6,7"` on cuda, `--nproc_per_node=N` on cpu."""
        runner, devices = self.pretrain_runner(wildcards), self.params["pretrain"][wildcards.scale]["devices"]
        spec = runner.launch_args(devices, "-")[0]
        return spec.replace("--gpus=", '--gpus="') + '"' if spec.startswith("--gpus=") else spec

    def launch_log_dir(self, wildcards, output) -> str:
        """The launcher's --log_dir (`actbert.pretrain.log_dir`, the document's log_actbert), inside
        the run folder so it goes with the run."""
        return f"{output.work}/{self.params['pretrain']['log_dir']}"

    def _amp(self, wildcards) -> bool:
        """`actbert.amp`; refused, while the DAG is planned, where the pretraining target has no GPU."""
        if not self.params["amp"]:
            return False
        runner = self.pretrain_runner(wildcards)
        try:
            runner.check_amp()
        except ConfigError as exc:
            raise ConfigError(f"actbert.amp is true: {exc}; the {wildcards.scale}-scale pretraining runs on target "
                              f"{runner.target!r} (actbert.pretrain.{wildcards.scale}.target). Set actbert.amp: false "
                              "in params.yaml (or in a --configfile given after it) for this run, or set "
                              f"actbert.pretrain.{wildcards.scale}.target to a GPU target (cuda)") from None
        return True

    def amp_env(self, wildcards) -> str:
        """The document's AMP FLAGS as a command prefix (`FLAGS_...=800 ... `) with actbert.amp."""
        return "".join(f"{k}={v} " for k, v in AMP_FLAGS.items()) if self._amp(wildcards) else ""

    def amp_arg(self, wildcards) -> str:
        """main.py's `--amp ` with actbert.amp."""
        return "--amp " if self._amp(wildcards) else ""

    def table(self, wildcards) -> dict:
        scale, target = self.scale(wildcards), wildcards.target
        base = f"work/{scale}/actbert/{target}"
        measurements = [f"{base}/test.measurements.json"]
        if scale == "mini":  # full-scale pretraining is a target of its own (days on 8 GPUs)
            measurements.append(f"work/{scale}/actbert/pretrain/loss.measurements.json")
        return {"measurements": measurements, "toolchain": f"{base}/metrics.json"}
