"""Shape scale: a CLIP-shaped video-bert.onnx source at real sizes, random weights, synthetic inputs.

Throughput does not depend on weight values. The released video-bert.onnx is "CLIP-like" (CLIP's
preprocessing, a [100,77] int64 text input of the 100 class prompts, CLIP's forward signature:
../shared/upstream/videobert_actbert.md), but its sizes are not published. The sizes come from
params `videobert.shape.clip` (OpenAI CLIP ViT-B/32's: an assumption every row of the table
states). This writes, in the formats the full scale reads:

* `open_videobert/shape-clip/`: a transformers CLIPModel at those sizes with seeded random
  weights (save_pretrained: config.json, model.safetensors), which export_onnx turns into
  video-bert.onnx exactly as at mini scale;
* `cifar-100-python/{test,meta,text.npy}`: `n_images` seeded random 32x32 images (the workload's
  accuracy pass needs some; no accuracy is recorded at this scale) in the CIFAR python pickle
  format, and text.npy of 100 prompts with CLIP's token ids (start 49406, 1-20 ids, end 49407,
  zero padding), int64 [100,77];
* `MANIFEST.json`: every file's sha256 and the generator's parameters.

Nothing is downloaded. No planted claims: accuracy rows are NOT_RUN at shape scale.

Usage: python -m zoorepro.videobert.make_shape --out data/shape/videobert --clip '{"vision": {...},
           "text": {...}, "projection_dim": 512}' [--seed 0] [--n-images 8]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from zoorepro.cli import hub_offline, run_step
from zoorepro.errors import ZooreproError

MODEL_DIR = "open_videobert/shape-clip"
MANIFEST = "MANIFEST.json"
CONTEXT_LENGTH = 77


def clip_config(sizes: dict):
    """A CLIPConfig from params `videobert.shape.clip` (vision, text, projection_dim)."""
    from transformers import CLIPConfig

    text = dict(sizes["text"], pad_token_id=0)
    return CLIPConfig(text_config=text, vision_config=dict(sizes["vision"]), projection_dim=sizes["projection_dim"])


def prompt_tokens(rng: np.random.Generator, vocab_size: int, bos: int, eos: int, n_classes: int) -> np.ndarray:
    """int64 [n_classes, 77]: start token, 1..20 random ids below the start token, end token,
    zero padding (CLIP's tokenizer layout; the end token is CLIP's largest id)."""
    if not 0 < bos < vocab_size or not 0 < eos < vocab_size:
        raise ZooreproError(f"start/end tokens {bos}/{eos} outside the vocabulary of {vocab_size}")
    text = np.zeros((n_classes, CONTEXT_LENGTH), np.int64)
    for row, length in enumerate(rng.integers(1, 21, size=n_classes)):
        ids = [bos, *rng.integers(1, bos, size=int(length)).tolist(), eos]
        text[row, :len(ids)] = ids
    return text


def make_shape(out: Path, sizes: dict, seed: int = 0, n_images: int = 8) -> dict:
    """Write the model folder, the data set and the manifest into `out` (swapped in when complete)."""
    import torch
    from transformers import CLIPModel

    from zoorepro.fsutil import building_dir, write_tree_manifest
    from zoorepro.videobert.cifar import N_CLASSES
    from zoorepro.videobert.make_mini import write_dataset

    if n_images < 1:
        raise ZooreproError(f"need at least one image, got n_images={n_images}")
    config = clip_config(sizes)
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n_images, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, N_CLASSES, size=n_images)
    text_cfg = config.text_config
    text = prompt_tokens(rng, text_cfg.vocab_size, text_cfg.bos_token_id, text_cfg.eos_token_id, N_CLASSES)
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with building_dir(out) as tmp:
        torch.manual_seed(seed)
        model = CLIPModel(config).eval()
        n_params = sum(p.numel() for p in model.parameters())
        model.save_pretrained(str(tmp / MODEL_DIR))
        del model
        write_dataset(tmp, images, labels, text)
        manifest = write_tree_manifest(tmp, MANIFEST, {"generator": "zoorepro.videobert.make_shape",
                                                       "params": {"seed": seed, "n_images": n_images, "clip": sizes,
                                                                  "parameters": n_params}})
    return manifest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--clip", type=json.loads, required=True,
                        help="params videobert.shape.clip as JSON (vision, text, projection_dim)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-images", type=int, default=8)
    args = parser.parse_args()
    hub_offline()
    manifest = make_shape(args.out, args.clip, args.seed, args.n_images)
    print(f"wrote {len(manifest['files'])} files to {args.out} "
          f"({manifest['params']['parameters'] / 1e6:.1f} M parameters)")
    return 0


if __name__ == "__main__":
    run_step(main)
