"""A CLIPModel folder -> ONNX with video-bert.onnx's signature, checked against torch.

ByteMLPerf's model JSON for videobert-onnx-fp32 gives the signature to match: inputs `image`
float32 [B,3,224,224] and `text` int64 [100,77] (the 100 class prompts, never batched), two
outputs, logits_per_image [B,100] and logits_per_text [100,B] (CLIP's forward(image, text)). The
mini model is a transformers CLIPModel; this wraps it to that signature and exports it, so the
downstream steps run on a model shaped like the real one.

* Text gets no attention mask, inside the wrapper or outside: the real graph has no mask input,
  and CLIP needs none. Its text encoder is causal and pools at the end token, and the zero
  padding sits after the end token, so no padded position reaches the pooled feature (the
  original CLIP computes exactly this; a `text != 0` mask would give the same logits).
* Attention is exported in its "eager" form (MatMul + Softmax), the form the 2021 CLIP export
  has and vendor compilers handle, rather than a fused scaled-dot-product operator.
* TorchScript exporter (dynamo=False): it handles this model directly and needs no onnxscript.
* The export is checked: onnxruntime must match torch eager within TOLERANCE at batch 1 and at
  another batch size (axis 0 of `image` is dynamic), and the graph must have the signature
  above; otherwise nothing is written. The file appears under its name only when complete.

Usage: python -m zoorepro.videobert.export_onnx --model_dir data/mini/videobert/open_videobert/mini-clip
           --save_path work/mini/videobert/onnx/video-bert.onnx [--opset 17]
"""
from __future__ import annotations

import argparse
import time
from zoorepro.cli import hub_offline, run_step

from pathlib import Path

import numpy as np
import torch

from zoorepro import lineage
from zoorepro.errors import ShapeMismatchError, ZooreproError
from zoorepro.fsutil import writing_file

INPUT_NAMES = ("image", "text")
OUTPUT_NAMES = ("logits_per_image", "logits_per_text")
IMAGE_SHAPE = (3, 224, 224)
TEXT_SHAPE = (100, 77)
BATCH_AXIS = "batch_size"
TOLERANCE = 1e-4
CHECK_BATCH_SIZES = (1, 3)
SEED = 0


class ClipSignature(torch.nn.Module):
    """forward(image, text) -> (logits_per_image, logits_per_text), as CLIP's own forward."""

    def __init__(self, clip: torch.nn.Module) -> None:
        super().__init__()
        self.clip = clip

    def forward(self, image: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.clip(input_ids=text, pixel_values=image)
        return out.logits_per_image, out.logits_per_text


def load_model(model_dir: Path) -> ClipSignature:
    """The CLIPModel saved in `model_dir`, wrapped, in eval mode on the CPU, never downloaded."""
    from transformers import CLIPModel

    if not (Path(model_dir) / "config.json").is_file():
        raise ZooreproError(f"{model_dir}: no CLIPModel folder (config.json missing)")
    clip = CLIPModel.from_pretrained(str(model_dir), local_files_only=True, attn_implementation="eager")
    return ClipSignature(clip.eval()).eval()


def sample_text(model: ClipSignature, seed: int) -> torch.Tensor:
    """int64 [100,77] prompts like text.npy: the start token, 1..20 random ids, the end token,
    zero padding."""
    config = model.clip.config.text_config
    gen = torch.Generator().manual_seed(seed)
    text = torch.zeros(TEXT_SHAPE, dtype=torch.int64)
    lengths = torch.randint(1, 21, (TEXT_SHAPE[0],), generator=gen)
    for row, length in enumerate(lengths.tolist()):
        ids = torch.randint(1, config.bos_token_id, (length,), generator=gen)
        text[row, :length + 2] = torch.cat([torch.tensor([config.bos_token_id]), ids,
                                            torch.tensor([config.eos_token_id])])
    return text


def sample_image(batch_size: int, seed: int) -> torch.Tensor:
    """float32 [B,3,224,224], distributed roughly like CLIP-normalized pixels."""
    return torch.randn(batch_size, *IMAGE_SHAPE, generator=torch.Generator().manual_seed(seed))


def export_onnx(model: ClipSignature, image: torch.Tensor, text: torch.Tensor, path: Path, opset: int) -> None:
    """torch.onnx.export with video-bert.onnx's names; only the batch axis is dynamic."""
    dynamic_axes = {"image": {0: BATCH_AXIS}, "logits_per_image": {0: BATCH_AXIS},
                    "logits_per_text": {1: BATCH_AXIS}}
    with torch.no_grad():
        torch.onnx.export(model, (image, text), str(path), input_names=list(INPUT_NAMES),
                          output_names=list(OUTPUT_NAMES), dynamic_axes=dynamic_axes,
                          opset_version=opset, dynamo=False)


def check_signature(path: Path) -> None:
    """The graph's inputs and outputs must be video-bert.onnx's: names, element types, and shapes
    with a symbolic batch axis and everything else fixed."""
    import onnx

    def dims(value) -> list[int | str]:
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    def kinds(values) -> list[tuple[str, int, list[int | str]]]:
        return [(v.name, v.type.tensor_type.elem_type, dims(v)) for v in values]

    graph = onnx.load(str(path), load_external_data=False).graph
    float32, int64, classes = onnx.TensorProto.FLOAT, onnx.TensorProto.INT64, TEXT_SHAPE[0]
    expected_inputs = [("image", float32, [BATCH_AXIS, *IMAGE_SHAPE]), ("text", int64, list(TEXT_SHAPE))]
    expected_outputs = [("logits_per_image", float32, [BATCH_AXIS, classes]),
                        ("logits_per_text", float32, [classes, BATCH_AXIS])]
    if kinds(graph.input) != expected_inputs or kinds(graph.output) != expected_outputs:
        raise ShapeMismatchError(f"{path}: inputs {kinds(graph.input)}, outputs {kinds(graph.output)}; "
                                 f"expected {expected_inputs}, {expected_outputs} (name, onnx type, shape)")


def max_abs_diff(model: ClipSignature, path: Path, image: torch.Tensor, text: torch.Tensor) -> float:
    """Largest difference between onnxruntime (CPU) and torch eager over both outputs."""
    import onnxruntime

    with torch.no_grad():
        expected = [t.numpy() for t in model(image, text)]
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(list(OUTPUT_NAMES), {"image": image.numpy(), "text": text.numpy()})
    for name, want, have in zip(OUTPUT_NAMES, expected, got):
        if want.shape != have.shape:
            raise ZooreproError(f"{name}: onnxruntime gives shape {have.shape}, torch {want.shape}")
    return max(float(np.max(np.abs(want - have))) for want, have in zip(expected, got))


def export(model_dir: Path, save_path: Path, opset: int = 17) -> dict[int, float]:
    """Export, check and save; returns the max abs difference onnxruntime vs torch per checked
    batch size."""
    model = load_model(model_dir)
    text = sample_text(model, SEED)
    with writing_file(Path(save_path)) as tmp:
        export_onnx(model, sample_image(CHECK_BATCH_SIZES[0], SEED), text, tmp, opset)
        check_signature(tmp)
        diffs = {bs: max_abs_diff(model, tmp, sample_image(bs, SEED + bs), text) for bs in CHECK_BATCH_SIZES}
        if max(diffs.values()) > TOLERANCE:
            raise ZooreproError(f"onnxruntime differs from torch by {diffs} (max abs per batch size), "
                                f"over {TOLERANCE}")
    return diffs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model_dir", type=Path, required=True)
    parser.add_argument("--save_path", type=Path, required=True)
    parser.add_argument("--opset", type=int, default=17)
    args = parser.parse_args()
    hub_offline()
    start = time.perf_counter()
    diffs = export(args.model_dir, args.save_path, args.opset)
    print("[INFO] onnxruntime vs torch, max abs diff: "
          + ", ".join(f"batch {bs}: {diff:.3g}" for bs, diff in diffs.items()))
    lineage.record(args.save_path, [args.model_dir])
    print(f"[INFO] Done! {args.save_path} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    run_step(main)
