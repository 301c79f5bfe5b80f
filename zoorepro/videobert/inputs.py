"""The input and params functions of rules/videobert.smk (see zoorepro/workflow.py)."""
from __future__ import annotations

import json

from zoorepro.backends import get_backend
from zoorepro.workflow import ModelInputs

MINI_ONNX = "work/mini/videobert/onnx/video-bert.onnx"
FULL_ONNX = "data/full/videobert/model_zoo/popular/open_videobert/video-bert.onnx"


class Inputs(ModelInputs):
    model = "videobert"

    @property
    def workload_path(self) -> str:
        """ByteMLPerf's workload JSON for the task (shipped, pinned, in workloads/)."""
        return f"workloads/{self.params['task']}.json"

    def workload(self) -> dict:
        return json.loads((self.root / self.workload_path).read_text())

    def model_inputs(self, wildcards) -> dict:
        """The ONNX and data a step reads: the exported mini model and generated data, or the
        document's downloads (their stamps; the files inside are named by onnx and cifar_dir)."""
        if wildcards.scale == "mini":
            return {"onnx": MINI_ONNX, "data": "data/mini/videobert/MANIFEST.json"}
        return self.full_data()

    def onnx(self, wildcards) -> str:
        return MINI_ONNX if wildcards.scale == "mini" else FULL_ONNX

    def cifar_dir(self, wildcards) -> str:
        if wildcards.scale == "mini":
            return "data/mini/videobert/cifar-100-python"
        return "data/full/videobert/datasets/open_cifar/cifar-100-python"

    def input_shapes(self, wildcards) -> str:
        return self.shape_words(self.params["input_shapes"], wildcards.bs)

    def table(self, wildcards) -> dict:
        scale, target = self.scale(wildcards), wildcards.target
        base = f"work/{scale}/videobert/{target}"
        measurements = [f"{base}/perf_engine.measurements.json"]
        if target != self.params["compare"]["reference"]:  # the reference is not compared with itself
            measurements.append(f"{base}/compare.measurements.json")
        if get_backend(target, self.config).compile_tool == "ixrtexec":  # the document's ixrtexec perf at BS 16
            measurements.append(f"{base}/perf_bs{self.params['ixrtexec_batch_size']}.measurements.json")
        return {"measurements": measurements, "toolchain": f"{base}/perf_engine.toolchain.json"}

    def compare_batch_size(self, wildcards) -> int:
        """perf_engine measures accuracy (and saves the logits) at the workload's first batch size."""
        return self.workload()["batch_sizes"][0]
