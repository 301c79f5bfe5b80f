"""The input and params functions of rules/vilbert.smk (see zoorepro/workflow.py)."""
from __future__ import annotations

from zoorepro.workflow import ModelInputs

ARCHIVES = {
    "mini": "data/mini/vilbert/vilbert-vqa-mini.tar.gz",
    "full": "data/full/vilbert/vilbert-vqa-pretrained.2021-03-15.tar.gz",
    "shape": "data/shape/vilbert/vilbert-vqa-shape.tar.gz",
}


class Inputs(ModelInputs):
    model = "vilbert"

    @property
    def shapes(self) -> dict:
        """The six model inputs at pad_len and box_num (the document's --input-shape words)."""
        p, b = self.params["pad_len"], self.params["box_num"]
        return {"box_features": ["bs", b, 1024], "box_coordinates": ["bs", b, 4], "box_mask": ["bs", b],
                "token_ids": ["bs", p], "mask": ["bs", p], "type_ids": ["bs", p]}

    def data(self, wildcards) -> dict:
        """The data a step reads: generated (mini: data and a tiny model; shape: the full-size
        architecture with random weights) or downloaded and verified (full)."""
        if wildcards.scale in ("mini", "shape"):
            return {"manifest": f"data/{wildcards.scale}/vilbert/MANIFEST.json"}
        return self.full_data()

    def perf(self, wildcards) -> dict:
        """The perf loop: the document's (params `vilbert.perf`: ais_bench --loop 20), except for the
        full-size model on a CPU (shape scale, `vilbert.shape.perf`), where one bs64 run takes seconds."""
        on_cpu = self.hardware(wildcards.target) == "cpu"
        return self.params["shape"]["perf"] if wildcards.scale == "shape" and on_cpu else self.params["perf"]

    def archive(self, wildcards) -> str:
        return ARCHIVES[wildcards.scale]

    def full_layout_args(self, wildcards) -> str:
        """Full-scale layout (manifests/vilbert.yaml): COCO unpacks under images/val2014/ (the reader
        globs its image_dir recursively); the mini generator writes val2014/ where preprocess looks."""
        return "--image_dir data/full/vilbert/images" if wildcards.scale == "full" else ""

    def pretrained_arg(self, wildcards) -> str:
        """The real archive builds its text stream from bert-base-uncased before loading its weights."""
        return "--pretrained_dir data/full/vilbert/bert-base-uncased" if wildcards.scale == "full" else ""

    def subset_arg(self, wildcards) -> str:
        subset = self.params["full"]["question_subset"]
        return f"--question_subset {subset}" if wildcards.scale == "full" and subset else ""

    def input_shapes(self, wildcards) -> str:
        return self.shape_words(self.shapes, wildcards.bs)

    def input_dirs(self, wildcards) -> str:
        return " ".join(f"work/{wildcards.scale}/vilbert/preprocessed/{name}" for name in self.shapes)

    def compiled(self, scale: str, target: str, bs) -> str:
        return f"work/{scale}/vilbert/{target}/model_bs{bs}.{self.artifact_suffix(target)}"

    def compiled_model(self, wildcards) -> str:
        return self.compiled(wildcards.scale, wildcards.target, wildcards.bs)

    def accuracy_model(self, wildcards) -> dict:
        """The document runs ais_bench inference with the bs`accuracy_batch_size` model."""
        model = self.compiled(wildcards.scale, wildcards.target, self.params["accuracy_batch_size"])
        return {"model": model, "versions": f"{model}.toolchain.json"}

    def table(self, wildcards) -> dict:
        """Accuracy, parity and perf at mini and full scale; perf only at shape scale."""
        scale, target = self.scale(wildcards), wildcards.target
        base = f"work/{scale}/vilbert/{target}"
        model = self.compiled(scale, target, self.params["accuracy_batch_size"])
        accuracy = [] if scale == "shape" else [f"{base}/accuracy.measurements.json",
                                                f"{base}/compare.measurements.json"]
        return {
            "measurements": [*accuracy, *(f"{base}/perf_bs{bs}.measurements.json" for bs in self.params["batch_sizes"])],
            "toolchain": f"{model}.toolchain.json",
        }

    def compare_batch_size(self, wildcards) -> int:
        return self.params["accuracy_batch_size"]
