"""The input and params functions of rules/llava_video.smk (see zoorepro/workflow.py)."""
from __future__ import annotations

from zoorepro.models import runner_name
from zoorepro.workflow import ModelInputs

MODEL = "llava_video"


def data_dir(scale: str) -> str:
    return f"data/{scale}/{MODEL}"


def sample_dir(scale: str) -> str:
    """extract_dataset's outputs, in the upstream layout: <S>/Video-Bench/Eval_QA/ (the sampled QA
    file and its answers) and <S>/VideoBench/Eval_video/sampling_data/ (the sampled videos)."""
    return f"work/{scale}/{MODEL}/sample"


# The paths the steps name on their command lines (the document's arguments), per scale.
def paths(scale: str) -> dict[str, str]:
    data, sample = data_dir(scale), sample_dir(scale)
    return {
        "eval_qa_root": f"{data}/Video-Bench",             # --Eval_QA_root (Eval_QA/<Subset>_QA_new.json)
        "eval_video_root": f"{data}/VideoBench",           # --Eval_Video_root (Eval_video/<Subset>/...)
        "answer": f"{data}/Video-Bench/ANSWER.json",       # --correct_answer_file
        "models": f"{data}/models",
        "sample_qa_root": f"{sample}/Video-Bench",         # the sampled Eval_QA_root
        "sample_video_root": f"{sample}/VideoBench",       # the sampled Eval_Video_root
        "sample_video_dir": f"{sample}/VideoBench/Eval_video/sampling_data",  # MindIE's ${video_path}
        "sample_json": f"{sample}/Video-Bench/Eval_QA",    # --json_output_path
        "sample_videos": f"{sample}/VideoBench/Eval_video",  # --sampling_output_folder
    }


def checkpoint_dir(scale: str, ckpt: str) -> str:
    return f"{data_dir(scale)}/models/LLaVA-NeXT-Video-{ckpt}-hf"


class Inputs(ModelInputs):
    model = MODEL

    # ---- data ------------------------------------------------------------------------------

    def data(self, wildcards) -> dict:
        """The generated set (mini: tiny models and planted answers; shape: the real sizes with random
        weights and synthetic videos), or the stamps of the verified full downloads."""
        if wildcards.scale in ("mini", "shape"):
            return {"data": f"{data_dir(wildcards.scale)}/MANIFEST.json"}
        return self.full_data()

    def checkpoint(self, wildcards) -> dict:
        """A checkpoint folder's ready mark: the generator's manifest (mini, shape), or the verified
        snapshot (full)."""
        if wildcards.scale in ("mini", "shape"):
            return {"data": f"{data_dir(wildcards.scale)}/MANIFEST.json"}
        return {"checkpoint": f"{checkpoint_dir('full', wildcards.ckpt)}/.verified.json"}

    @staticmethod
    def path(name: str):
        """A params function: the path `name` of this scale (paths), for a rule's command line."""
        return lambda wildcards: paths(wildcards.scale)[name]

    @staticmethod
    def checkpoint_path(wildcards) -> str:
        return checkpoint_dir(wildcards.scale, wildcards.ckpt)

    def nums(self, wildcards) -> int:
        if wildcards.scale == "shape":
            return self.params["shape"]["questions"]
        return self.params["sampling"]["nums"][wildcards.scale]

    def max_new_tokens(self, wildcards) -> int:
        if wildcards.scale == "shape":
            return self.params["shape"]["max_new_tokens"]
        return self.params["max_new_tokens"][wildcards.scale]

    def checkpoints(self, scale: str) -> list[str]:
        """The checkpoints a table has rows for (shape: `shape.checkpoints`)."""
        return self.params["shape"]["checkpoints"] if scale == "shape" else self.params["checkpoints"]

    # ---- shape scale: % of the target's peak ----------------------------------------------

    def peak(self, wildcards) -> dict:
        """At shape scale the inference step also gives prefill and decode rates with their % of the
        target's peak (the `peak` rule at the step's dtype); nothing at mini and full scale."""
        if wildcards.scale != "shape":
            return {}
        return {"peak": f"work/shape/{MODEL}/{wildcards.target}/peak.json"}

    def peak_precision(self, wildcards) -> str:
        """What the `peak` rule measures or looks up: the dtype this target runs in at that scale."""
        return self.dtype(wildcards)

    def shape_args(self, wildcards, input, threads) -> str:
        """llava_gpu's extra arguments at shape scale: the peak file (prefill/decode rows with % of
        peak) and every core the job holds for torch; none at mini and full scale."""
        if wildcards.scale != "shape":
            return ""
        return f"--peak {input.peak} --cpu-threads {threads}"

    def npu_settings(self, wildcards) -> dict:
        """run_pa_videobench.sh's MAX_* arguments; at shape scale MAX_OUTPUT_LENGTH is the fixed
        number of generated tokens."""
        settings = dict(self.params["npu"])
        if wildcards.scale == "shape":
            settings["max_output_length"] = self.params["shape"]["max_new_tokens"]
        return settings

    # ---- targets and runners ---------------------------------------------------------------

    def runner_folder(self, target: str) -> str:
        """The folder of a target's answers is named for the runner that wrote them."""
        return runner_name(self.model, target, self.config)

    def dtype(self, wildcards) -> str:
        block = self.params["shape"] if wildcards.scale == "shape" else self.params
        return block["dtype"][self.hardware(wildcards.target)]

    def gpu_launch(self, wildcards) -> str:
        """How llava_gpu starts: `python -m` for one process, torchrun for N (the questions sharded
        over them; the document's script made every process answer all and write one file)."""
        nproc = self.params["gpu"]["nproc"][self.hardware(wildcards.target)]
        if nproc == 1:
            return "python -m"
        return f"python -m torch.distributed.run --standalone --nproc_per_node {nproc} -m"

    def gpu_threads(self, wildcards) -> int | None:
        """Cores the llava_gpu job holds on the cpu: one a process (torch runs one thread each
        there), so Snakemake runs two checkpoints at once on a 2-core machine; None elsewhere (on a
        GPU the job takes the whole host: its timings are rows of the table)."""
        if self.hardware(wildcards.target) == "cpu" and wildcards.scale != "shape":
            return self.params["gpu"]["nproc"]["cpu"]
        return None  # shape scale: the real sizes need every core

    def mindie_env(self, wildcards) -> str:
        """MindIE's environment (run_pa_videobench.sh reads MASTER_PORT; the card ids), as a prefix."""
        settings = self.config["targets"][wildcards.target]
        return (f"MASTER_PORT={settings.get('master_port', 20030)} "
                f"ASCEND_RT_VISIBLE_DEVICES={settings.get('visible_devices', '0')} ")

    # ---- what the table joins --------------------------------------------------------------

    def answers(self, scale: str, target: str, ckpt: str) -> str:
        return f"work/{scale}/{MODEL}/{target}/{ckpt}/{self.runner_folder(target)}/Chat_results/sampling_data_eval.json"

    def reference_answers(self, wildcards) -> str:
        """The GPU side's answers the NPU's are tested against (`reference.<scale>`)."""
        return self.answers(wildcards.scale, self.params["reference"][wildcards.scale], wildcards.ckpt)

    def npu_answers(self, wildcards) -> str:
        return self.answers(wildcards.scale, wildcards.target, wildcards.ckpt)

    def table(self, wildcards) -> dict:
        """Per checkpoint: perf and scores (and on the NPU the precision test); at shape scale perf only
        (random weights: no accuracy), for `shape.checkpoints`."""
        scale, target = self.scale(wildcards), wildcards.target
        runner = self.runner_folder(target)
        measurements = []
        for ckpt in self.checkpoints(scale):
            base = f"work/{scale}/{MODEL}/{target}/{ckpt}"
            measurements.append(f"{base}/{runner}/perf.measurements.json")
            if scale == "shape":
                continue
            measurements.append(f"{base}/{runner}/score.measurements.json")
            if self.hardware(target) == "npu":  # the document's precision test: NPU against GPU
                measurements.append(f"{base}/precision_test.measurements.json")
        first = self.checkpoints(scale)[0]
        return {"measurements": measurements,
                "toolchain": f"work/{scale}/{MODEL}/{target}/{first}/{runner}/toolchain.json"}
