"""What the rules' input functions share, model-free. Each model's own input functions live in
its package (`zoorepro/<model>/inputs.py`, a `ModelInputs` subclass built from the Snakemake
config), so that rules/<model>.smk holds rules only and reads as the document's steps."""
from __future__ import annotations

from pathlib import Path

from . import yamlutil
from .backends import get_backend
from .config import REPO_ROOT, scale_of_results_dir


class ModelInputs:
    """Input and params functions for one model's rules: methods taking Snakemake's `wildcards`."""

    model: str = ""

    def __init__(self, config: dict, root: Path = REPO_ROOT):
        self.config = config
        self.params = config[self.model]
        self.root = Path(root)

    # ---- shared by every model -------------------------------------------------------------

    def manifest_entries(self) -> list[str]:
        """The entry names of manifests/<model>.yaml (one download job each)."""
        manifest = yamlutil.load_file(self.root / "manifests" / f"{self.model}.yaml")
        return [entry["name"] for entry in manifest["entries"]]

    def full_data(self) -> dict[str, str]:
        """The stamps of every verified download of the model (full scale)."""
        return {f"download_{name}": f"data/full/{self.model}/.done/{name}" for name in self.manifest_entries()}

    def artifact_suffix(self, target: str) -> str:
        """What the target's backend compiles to (om, engine, onnx)."""
        return get_backend(target, self.config).artifact_suffix

    def compile_tool_args(self, wildcards) -> str:
        """The model's params `compile_args` for this target's compile tool (atc, ixrtexec), as one
        value (the compile step's --tool-args); empty for a tool it names no flags for."""
        tool = get_backend(wildcards.target, self.config).compile_tool
        return " ".join(self.params.get("compile_args", {}).get(tool, []) if tool else [])

    # ---- models run by their own framework (pipeline.py RUNNER) -------------------------------

    def hardware(self, target: str) -> str:
        """The target's hardware kind (params.yaml `targets.<t>.hardware`)."""
        return str(self.config["targets"][target]["hardware"])

    def runner(self, target: str):
        """The runner that runs this model on `target` (zoorepro/runners/)."""
        from .models import runner_name
        from .runners import get_runner

        return get_runner(runner_name(self.model, target, self.config), target, self.config)

    def device(self, wildcards) -> str:
        """A params function: the framework's device for the rule's target (the step's --device)."""
        return self.runner(wildcards.target).device

    @staticmethod
    def scale(wildcards) -> str:
        """The scale of a table's folder (results/ = full, results/mini/ = mini, results/shape/ = shape)."""
        return scale_of_results_dir(wildcards.resdir)

    @staticmethod
    def shape_words(shapes: dict, bs) -> str:
        """`NAME:D0,D1,...` words of `input_shapes` at batch size `bs` (the dim `bs`)."""
        return " ".join(f'"{name}:' + ",".join(str(bs) if d == "bs" else str(d) for d in dims) + '"'
                        for name, dims in shapes.items())

    # ---- what the shared rules ask of every model ------------------------------------------

    def table(self, wildcards) -> dict:
        """{"measurements": [files], "toolchain": file} the model's table joins."""
        raise NotImplementedError

    def compare_batch_size(self, wildcards) -> int:
        """The batch size the compared outputs were computed at (models with a compare block)."""
        raise NotImplementedError
