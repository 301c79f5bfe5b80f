"""The input and params functions of rules/videobert.smk (see zoorepro/workflow.py)."""
from __future__ import annotations

import json

from zoorepro.backends import get_backend
from zoorepro.workflow import ModelInputs

# The exported graph at mini scale (tiny CLIP) and at shape scale (real sizes, random weights).
EXPORTED_ONNX = "work/{scale}/videobert/onnx/video-bert.onnx"
GENERATED_MODEL = {"mini": "data/mini/videobert/open_videobert/mini-clip",
                   "shape": "data/shape/videobert/open_videobert/shape-clip"}
FULL_ONNX = "data/full/videobert/model_zoo/popular/open_videobert/video-bert.onnx"


class Inputs(ModelInputs):
    model = "videobert"

    @property
    def workload_path(self) -> str:
        """ByteMLPerf's workload JSON for the task (shipped, pinned, in workloads/)."""
        return f"workloads/{self.params['task']}.json"

    @property
    def shape_clip_json(self) -> str:
        """params videobert.shape.clip as the JSON make_shape reads (--clip)."""
        return json.dumps(self.params["shape"]["clip"], sort_keys=True)

    def workload(self) -> dict:
        return json.loads((self.root / self.workload_path).read_text())

    def model_inputs(self, wildcards) -> dict:
        """The ONNX and data a step reads: the exported generated model and generated data (mini:
        tiny, planted; shape: real sizes, random), or the document's downloads (their stamps; the
        files inside are named by onnx and cifar_dir)."""
        if wildcards.scale in GENERATED_MODEL:
            return {"onnx": self.onnx(wildcards), "data": f"data/{wildcards.scale}/videobert/MANIFEST.json"}
        return self.full_data()

    def onnx(self, wildcards) -> str:
        return EXPORTED_ONNX.format(scale=wildcards.scale) if wildcards.scale in GENERATED_MODEL else FULL_ONNX

    @staticmethod
    def generated_model(wildcards) -> str:
        """The CLIPModel folder export_onnx reads (mini or shape)."""
        return GENERATED_MODEL[wildcards.scale]

    def cifar_dir(self, wildcards) -> str:
        if wildcards.scale in GENERATED_MODEL:
            return f"data/{wildcards.scale}/videobert/cifar-100-python"
        return "data/full/videobert/datasets/open_cifar/cifar-100-python"

    def perf_engine_args(self, wildcards) -> str:
        """Shape scale records no Top-1 (random weights); on a portable target its benchmark is
        short (`videobert.shape.perf`). A chip runs the workload's own warm-up and iterations."""
        if wildcards.scale != "shape":
            return ""
        args = "--throughput-only"
        if "bytemlperf" not in get_backend(wildcards.target, self.config).harnesses:  # portable perf_engine
            perf = self.params["shape"]["perf"]
            args += f" --iterations {perf['iterations']} --warmup {perf['warmup']}"
        return args

    def input_shapes(self, wildcards) -> str:
        return self.shape_words(self.params["input_shapes"], wildcards.bs)

    def table(self, wildcards) -> dict:
        scale, target = self.scale(wildcards), wildcards.target
        base = f"work/{scale}/videobert/{target}"
        measurements = [f"{base}/perf_engine.measurements.json"]
        # the reference is not compared with itself; shape scale measures throughput only
        if target != self.params["compare"]["reference"] and scale != "shape":
            measurements.append(f"{base}/compare.measurements.json")
        if get_backend(target, self.config).compile_tool == "ixrtexec":  # the document's ixrtexec perf at BS 16
            measurements.append(f"{base}/perf_bs{self.params['ixrtexec_batch_size']}.measurements.json")
        return {"measurements": measurements, "toolchain": f"{base}/perf_engine.toolchain.json"}

    def compare_batch_size(self, wildcards) -> int:
        """perf_engine measures accuracy (and saves the logits) at the workload's first batch size."""
        return self.workload()["batch_sizes"][0]
