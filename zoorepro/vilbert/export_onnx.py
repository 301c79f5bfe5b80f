"""The document's `export_onnx.py`: the archive's VqaVilbert -> ONNX with six flat inputs.

Same as the document: dummy inputs of ones (bool box_mask and mask, int64 token_ids and
type_ids), input names box_features, box_coordinates, box_mask, token_ids, mask, type_ids,
outputs logits and probs, batch and box/sequence dims dynamic. The flat inputs need the patched
VqaVilbert.forward (patch allennlp-models/01).

Added here, and why:
* The model is loaded the way load_archive loads it (Model.load on the extracted archive with its
  weights.th) but without building the archive's dataset readers, which would need the data
  folder (images, tokenizer, Faster R-CNN weights) that exporting does not use.
* A model built from a Hugging Face model name (the real archive's `vqa_vilbert_from_huggingface`
  names bert-base-uncased and downloads it before loading the archive's weights over it) is
  pointed at a local copy instead (`pretrained_dir`), so nothing is downloaded.
* The export is checked: onnxruntime must match torch eager within 1e-4 on the dummy input, on a
  seeded random one, and on a random one of other batch, box and sequence sizes (the axes are
  meant to be dynamic); a mismatch is an error, not a silent bad model.
* The eager outputs on the seeded random input are saved beside the model (`<onnx>.eager.npz`,
  inputs included) as the reference for parity checks of compiled models.
* The opset is the document's 11 by default (params `vilbert.opset`): ATC's accepted range
  depends on the CANN release (e.g. 11-15 for CANN 8.0.RC1/RC2), and the Ascend backend checks
  the model's opset against it before ATC runs. torch's TorchScript exporter still writes opset 11.
* Files are written to a temporary name and renamed, so an interrupted export leaves nothing
  that looks finished.

Usage: python -m zoorepro.vilbert.export_onnx --archive_file data/mini/vilbert/vilbert-vqa-mini.tar.gz
           --save_path work/mini/vilbert/onnx/vqa-vilbert.onnx [--src work/src/vilbert]
           [--opset 11] [--pad_len 32] [--box_num 100] [--batch_size 1] [--pretrained_dir DIR]
"""
from __future__ import annotations

import argparse
import time
from zoorepro.cli import hub_offline, run_step

import json
import os
from pathlib import Path

import numpy as np

from zoorepro import lineage
from zoorepro.errors import ZooreproError
from zoorepro.fsutil import writing_file
from zoorepro.vilbert.sources import activate

INPUT_NAMES = ("box_features", "box_coordinates", "box_mask", "token_ids", "mask", "type_ids")
OUTPUT_NAMES = ("logits", "probs")
TOLERANCE = 1e-4
EAGER_SEED = 0


def model_overrides(config: dict, pretrained_dir: Path | None) -> dict:
    """Config overrides that replace the Hugging Face model name a model is built from (before
    the archive's own weights are loaded over it) with a local copy of that model (config.json +
    pytorch_model.bin). Empty for models that name none, such as the mini one."""
    name = config["model"].get("model_name")
    if name is None:
        return {}
    if pretrained_dir is None or not Path(pretrained_dir).is_dir():
        raise ZooreproError(f"the archive's model is built from the Hugging Face model {name!r}: "
                            f"give a local copy of it (config.json, pytorch_model.bin), not {pretrained_dir}")
    return {"model.model_name": str(Path(pretrained_dir).resolve())}


def load_model(archive_file: Path, src: Path, pretrained_dir: Path | None = None):
    """The archive's model in eval mode on the CPU, loaded as load_archive loads it."""
    activate(src)
    import allennlp_models.vision  # noqa: F401  (registers vqa_vilbert)
    from allennlp.common import Params
    from allennlp.models import Model
    from allennlp.models.archival import CONFIG_NAME, extracted_archive, get_weights_path

    if not Path(archive_file).is_file():
        raise ZooreproError(f"{archive_file}: no such model archive")
    with extracted_archive(str(archive_file)) as folder:
        config_file = os.path.join(folder, CONFIG_NAME)
        overrides = model_overrides(json.loads(Path(config_file).read_text()), pretrained_dir)
        config = Params.from_file(config_file, json.dumps(overrides))
        model = Model.load(config, serialization_dir=folder, weights_file=get_weights_path(folder), cuda_device=-1)
    model.eval()
    return model


def feature_dim(model) -> int:
    """The box feature size the model expects (1024 for the Faster R-CNN box head)."""
    return model.backbone.image_embeddings.embeddings["image_embeddings"].in_features


def dummy_inputs(batch_size: int, box_num: int, pad_len: int, dim: int) -> dict:
    """The document's export input: ones, with bool masks and int64 ids."""
    import torch

    return {"box_features": torch.ones(batch_size, box_num, dim),
            "box_coordinates": torch.ones(batch_size, box_num, 4),
            "box_mask": torch.ones(batch_size, box_num, dtype=torch.bool),
            "token_ids": torch.ones(batch_size, pad_len, dtype=torch.int64),
            "mask": torch.ones(batch_size, pad_len, dtype=torch.bool),
            "type_ids": torch.ones(batch_size, pad_len, dtype=torch.int64)}


def random_inputs(batch_size: int, box_num: int, pad_len: int, dim: int, vocab_size: int, seed: int) -> dict:
    """A seeded input shaped like real samples: random features and boxes, a padded tail in both
    masks (so masking is exercised), ids within the text vocabulary, all-zero type_ids."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    n_boxes = torch.randint(1, box_num + 1, (batch_size, 1), generator=gen)
    n_tokens = torch.randint(2, pad_len + 1, (batch_size, 1), generator=gen)
    box_mask = torch.arange(box_num)[None, :] < n_boxes
    mask = torch.arange(pad_len)[None, :] < n_tokens
    corners = torch.rand(batch_size, box_num, 2, 2, generator=gen).sort(dim=2).values * 128
    return {"box_features": torch.rand(batch_size, box_num, dim, generator=gen) * box_mask[..., None],
            "box_coordinates": corners.reshape(batch_size, box_num, 4) * box_mask[..., None],
            "box_mask": box_mask,
            "token_ids": torch.randint(0, vocab_size, (batch_size, pad_len), generator=gen) * mask,
            "mask": mask,
            "type_ids": torch.zeros(batch_size, pad_len, dtype=torch.int64)}


def eager_outputs(model, inputs: dict) -> dict[str, np.ndarray]:
    """logits and probs of the torch model."""
    import torch

    with torch.no_grad():
        outputs = model(**inputs)
    return {name: outputs[name].numpy() for name in OUTPUT_NAMES}


def onnx_outputs(path: Path, inputs: dict) -> dict[str, np.ndarray]:
    """logits and probs of the ONNX model under onnxruntime on the CPU."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    results = session.run(list(OUTPUT_NAMES), {name: inputs[name].numpy() for name in INPUT_NAMES})
    return dict(zip(OUTPUT_NAMES, results))


def max_abs_diff(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    """Largest elementwise difference over both outputs; shape mismatches are errors."""
    for name in OUTPUT_NAMES:
        if a[name].shape != b[name].shape:
            raise ZooreproError(f"{name}: onnxruntime gives shape {b[name].shape}, torch {a[name].shape}")
    return max(float(np.max(np.abs(a[name] - b[name]))) for name in OUTPUT_NAMES)


def export_onnx(model, inputs: dict, path: Path, opset: int) -> None:
    """torch.onnx.export with the document's names and dynamic axes (TorchScript exporter:
    faster than dynamo for this model and needs no onnxscript)."""
    import torch

    dynamic_axes = {name: {0: "batch_size", 1: "box_num"} for name in INPUT_NAMES[:3]}
    dynamic_axes.update({name: {0: "batch_size", 1: "seq_len"} for name in INPUT_NAMES[3:]})
    dynamic_axes.update({name: {0: "batch_size"} for name in OUTPUT_NAMES})
    with torch.no_grad():
        torch.onnx.export(model, (), str(path), kwargs=inputs, input_names=list(INPUT_NAMES),
                          output_names=list(OUTPUT_NAMES), dynamic_axes=dynamic_axes,
                          opset_version=opset, dynamo=False)


def export(archive_file: Path, save_path: Path, src: Path, *, opset: int = 11, pad_len: int = 32,
           box_num: int = 100, batch_size: int = 1, pretrained_dir: Path | None = None) -> dict[str, float]:
    """Export, verify and save the model and the eager reference; returns the max abs
    differences between onnxruntime and torch on each checked input."""
    model = load_model(archive_file, src, pretrained_dir)
    dim = feature_dim(model)
    vocab_size = model.backbone.text_embeddings.embeddings["word_embeddings"].num_embeddings
    dummy = dummy_inputs(batch_size, box_num, pad_len, dim)
    seeded = random_inputs(batch_size, box_num, pad_len, dim, vocab_size, EAGER_SEED)
    resized = random_inputs(batch_size + 1, box_num // 2 + 1, pad_len // 2 + 1, dim, vocab_size, EAGER_SEED + 1)
    save_path = Path(save_path)
    with writing_file(save_path) as tmp, writing_file(Path(f"{save_path}.eager.npz")) as eager:
        export_onnx(model, dummy, tmp, opset)
        reference = eager_outputs(model, seeded)
        diffs = {"dummy": max_abs_diff(eager_outputs(model, dummy), onnx_outputs(tmp, dummy)),
                 "random": max_abs_diff(reference, onnx_outputs(tmp, seeded)),
                 "other_sizes": max_abs_diff(eager_outputs(model, resized), onnx_outputs(tmp, resized))}
        if max(diffs.values()) > TOLERANCE:
            raise ZooreproError(f"onnxruntime differs from torch by {diffs} (max abs), over {TOLERANCE}")
        with eager.open("wb") as stream:
            np.savez(stream, **{name: t.numpy() for name, t in seeded.items()}, **reference)
        tmp.with_suffix(".npz").unlink(missing_ok=True)
    return diffs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archive_file", type=Path, required=True)
    parser.add_argument("--save_path", type=Path, required=True)
    parser.add_argument("--src", type=Path, default=Path("work/src/vilbert"))
    parser.add_argument("--opset", type=int, default=11)
    parser.add_argument("--pad_len", type=int, default=32)
    parser.add_argument("--box_num", type=int, default=100)
    parser.add_argument("--batch_size", type=int, default=1)
    parser.add_argument("--pretrained_dir", type=Path, default=None,
                        help="local copy of the Hugging Face model the archive's model is built from "
                             "(the real archive: bert-base-uncased); not needed for the mini archive")
    args = parser.parse_args()
    hub_offline()
    start = time.perf_counter()
    print("[INFO] Export to onnx.")
    diffs = export(args.archive_file, args.save_path, args.src, opset=args.opset, pad_len=args.pad_len,
                   box_num=args.box_num, batch_size=args.batch_size, pretrained_dir=args.pretrained_dir)
    print("[INFO] onnxruntime vs torch, max abs diff: "
          + ", ".join(f"{name} input {diff:.3g}" for name, diff in diffs.items()))
    lineage.record(args.save_path, [args.archive_file, *([args.pretrained_dir] if args.pretrained_dir else [])])
    print(f"[INFO] Done! {args.save_path} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    run_step(main)
