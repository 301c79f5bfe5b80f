"""FLOPs of ClipBERT's work per item, for the tables' "% of peak" rows and the FLOPs registry.

Counted, not estimated: torch.utils.flop_counter.FlopCounterMode over one forward of the same
architecture at the batch's shapes (every matmul, convolution and attention kernel: the ResNet on
every frame, the grid encoder, BERT over text and visual tokens, the classifier), divided by the
batch's items. The forward runs on the meta device (a copy of the model's config with no weights, the
batch's shapes with no values): FLOPs depend on shapes only, so the count costs no compute and the
timed loop runs nothing extra. A training step costs its forward and backward: 3 x the forward (the
backward computes two matmuls per forward matmul, gradients for inputs and weights; the frozen stem
and res2 make this an upper bound). Element-wise ops, normalisation and softmax are not counted.

The peak is the target's (rules/peaks.smk: this CPU measured; a GPU from zoorepro/peaks.yaml by name).

`python -m zoorepro.clipbert.compute` counts the full-size model (base_model.json, ANetQA's 12,911
answers) at the document's shapes: an inference question is 16 clips of 1 frame at max_img_size
448 (a 7 x 7 visual grid) with max_txt_len 40 text tokens; a training sample 4 clips of 2 frames;
`--record claims/flops.yaml` writes ClipBERT's entry of the FLOPs registry.

Usage: python -m zoorepro.clipbert.compute [--record claims/flops.yaml]
"""
from __future__ import annotations

import argparse
from pathlib import Path

TRAIN_FACTOR = 3.0
METHOD = ("torch.utils.flop_counter.FlopCounterMode over one forward on the meta device at the batch's shapes "
          "(2 x multiply-accumulates of every matmul, convolution and attention kernel); element-wise ops, "
          "normalization and softmax not counted")
# The document's shapes (anetqa_frameqa_base_resnet50.json; inference --inference_n_clips 16 of 1 frame)
DOCUMENT = {"max_txt_len": 40, "max_img_size": 448, "eval_clips": 16, "eval_frames_per_clip": 1,
            "train_n_clips": 4, "num_frm": 2, "answers": 12911}


def forward_flops(forward) -> float:
    """FLOPs of one call of `forward()` (a closure over the model and a batch), no gradients."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        forward()
    return float(counter.get_total_flops())


def batch_flops(config, text_len: int, video_shape, n_clips: int) -> float:
    """FLOPs of clip_logits for a batch of `video_shape` (B, n_clips x T, 3, H, W) with `text_len`
    text tokens, counted on a meta-device ClipBERT of `config` (no weights, no values)."""
    import torch

    from zoorepro.clipbert.model import build_model

    with torch.device("meta"):
        model = build_model(config).eval()
        b = int(video_shape[0])
        ids = torch.zeros(b, text_len, dtype=torch.long)
        mask = torch.ones(b, text_len, dtype=torch.long)
        video = torch.zeros(*video_shape)
    return forward_flops(lambda: model.clip_logits(ids, mask, video, n_clips))


def percent_of_peak(items_per_s: float, flops_per_item: float, gpu_name: str, dtype: str):
    """(percent, peak FLOP/s, source) on a listed GPU, else None."""
    from zoorepro.peaks import gpu_peak

    peak = gpu_peak(gpu_name, dtype)
    if peak is None:
        return None
    flops, source = peak
    return 100.0 * items_per_s * flops_per_item / flops, flops, source


def document_counts(shapes: dict = DOCUMENT) -> dict:
    """The full-size model's FLOPs at the document's shapes: an inference question, a training
    sample (x3 for the backward), and the parameter count."""
    import torch

    from zoorepro.clipbert.model import BASE_MODEL, ClipBertConfig, build_model, num_labels_for

    config = ClipBertConfig.from_model_config(dict(BASE_MODEL), num_labels_for(shapes["answers"]))
    size = shapes["max_img_size"]
    eval_frames = shapes["eval_clips"] * shapes["eval_frames_per_clip"]
    train_frames = shapes["train_n_clips"] * shapes["num_frm"]
    question = batch_flops(config, shapes["max_txt_len"], (1, eval_frames, 3, size, size), shapes["eval_clips"])
    sample = batch_flops(config, shapes["max_txt_len"], (1, train_frames, 3, size, size), shapes["train_n_clips"])
    with torch.device("meta"):
        parameters = sum(p.numel() for p in build_model(config).parameters())
    return {"question": question, "train_sample": TRAIN_FACTOR * sample, "parameters": int(parameters)}


def registry_entry(counts: dict, shapes: dict = DOCUMENT) -> dict:
    """ClipBERT's entry of the FLOPs registry: FLOPs a question at inference (a question costs the
    same at any batch size; the document's inference batch is 64)."""
    return {
        "flops_per_sample": counts["question"],
        "per_batch_size": {64: counts["question"]},
        "train_flops_per_sample": counts["train_sample"],
        "parameters": counts["parameters"],
        "shapes": (f"a question: {shapes['eval_clips']} clips of {shapes['eval_frames_per_clip']} frame at "
                   f"{shapes['max_img_size']}x{shapes['max_img_size']} (7x7 visual grid) + {shapes['max_txt_len']} "
                   f"text tokens, {shapes['answers']} answers; a training sample: {shapes['train_n_clips']} clips of "
                   f"{shapes['num_frm']} frames, x{TRAIN_FACTOR:g} for the backward"),
        "graph": "the project's full-size ClipBERT (zoorepro/clipbert/model.py, base_model.json) on the meta device",
        "method": METHOD,
        "counted_by": "python -m zoorepro.clipbert.compute",
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--record", type=Path, help="the FLOPs registry to write clipbert's entry into "
                    "(claims/flops.yaml)")
    args = ap.parse_args()
    counts = document_counts()
    print(f"ClipBERT (full size, {counts['parameters'] / 1e6:.1f} M parameters): "
          f"{counts['question'] / 1e9:.2f} GFLOP an inference question, "
          f"{counts['train_sample'] / 1e9:.2f} GFLOP a training sample ({METHOD})")
    if args.record:
        from zoorepro.flops import write_entry

        write_entry(args.record, "clipbert", registry_entry(counts))
        print(f"recorded in {args.record}")
    return 0


if __name__ == "__main__":
    from zoorepro.cli import run_step

    run_step(main)
