"""Shape scale: LLaVA-NeXT-Video at its real sizes with random weights, and a Video-Bench tree of
synthetic videos, for the full scale's extract_dataset and llava_gpu steps. Nothing is downloaded.

Throughput does not depend on weight values. This writes, in --out (the layout of data/full/llava_video):

* models/LLaVA-NeXT-Video-<ckpt>-hf/: a Hugging Face checkpoint folder in the llava-hf snapshot's
  on-disk form: config.json (count_flops.full_size_config: the real sizes and token ids),
  generation_config.json, sharded safetensors (`model-0000i-of-0000n.safetensors`, at most
  --max-shard-gb each) with model.safetensors.index.json, and the processor (processor_config.json
  with the 336-px video processor, chat_template.jinja, tokenizer.json, tokenizer_config.json).
  Weights in bfloat16, the dtype of the released checkpoints: float32 7B would be 28.3 GB, which does
  not fit this machine's 24 GiB with activations. Built on the meta device (nothing allocated) and
  filled tensor by tensor from a seeded normal(0, initializer_range) (norm weights 1, biases 0),
  written shard by shard, so memory stays near one shard. The tokenizer is the mini chain's BPE
  (make_mini_model.build_tokenizer) padded so `<video>`/`<image>` have the real ids; its text tokens
  differ from Llama's, so a prompt's text part is a few tokens shorter or longer than with the real
  tokenizer (the 1152 video tokens of 8 frames are exact);
* Video-Bench/Eval_QA/<Subset>_QA_new.json (one question per subset, the mini generator's words),
  Video-Bench/ANSWER.json, and VideoBench/Eval_video/<Subset>/<video> (mp4, MSVD's avi): synthetic
  moving patterns at --width x --height, --video-frames frames each (the document samples 8 of
  them with np.arange(0, n, n/8)). Video-Bench's videos are longer; decode time per question is
  therefore lower here than with the real videos;
* MANIFEST.json: every file's sha256 and the generator's parameters.

A checkpoint whose bfloat16 weights exceed this host's memory is refused (the 34B: 69.5 GB): its
FLOPs are counted on paper (count_flops, claims/flops.yaml).

Usage: python -m zoorepro.llava_video.make_shape --out data/shape/llava_video --ckpt 7B [--seed 0] \\
           [--video-frames 96 --width 640 --height 360] [--max-shard-gb 2]
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from zoorepro.cli import run_step
from zoorepro.errors import ZooreproError

GENERATOR = "zoorepro.llava_video.make_shape"
MANIFEST = "MANIFEST.json"
CHUNK = 1 << 24  # elements drawn at a time


def host_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def is_norm_or_bias(name: str) -> str | None:
    """'ones' for a norm's weight, 'zeros' for a bias, None for a weight drawn at random."""
    if name.endswith(".bias"):
        return "zeros"
    leaf = name.rsplit(".", 2)[-2] if name.count(".") >= 1 else name
    if name.endswith(".weight") and ("norm" in leaf or "layrnorm" in leaf):
        return "ones"
    return None


def fill(name: str, shape, dtype, std: float, seed: int):
    """One tensor: norm weights 1, biases 0, anything else normal(0, std) from a generator seeded by
    (seed, name), drawn CHUNK elements at a time."""
    import zlib

    import torch

    kind = is_norm_or_bias(name)
    if kind == "ones":
        return torch.ones(shape, dtype=dtype)
    if kind == "zeros":
        return torch.zeros(shape, dtype=dtype)
    out = torch.empty(shape, dtype=dtype)
    flat = out.view(-1)
    gen = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))
    for start in range(0, flat.numel(), CHUNK):
        part = flat[start:start + CHUNK]
        part.copy_(torch.randn(part.numel(), generator=gen).mul_(std))
    return out


def shards(meta_state: dict, max_bytes: int) -> list[list[str]]:
    """Tensor names grouped in order into shards of at most max_bytes (a larger tensor alone)."""
    groups, current, size = [], [], 0
    for name, t in meta_state.items():
        nbytes = t.numel() * t.element_size()
        if current and size + nbytes > max_bytes:
            groups.append(current)
            current, size = [], 0
        current.append(name)
        size += nbytes
    if current:
        groups.append(current)
    return groups


def write_weights(config, folder: Path, seed: int, max_shard_gb: float, log=print) -> dict:
    """The random weights of `config` as sharded safetensors + index; returns the index."""
    import torch
    from safetensors.torch import save_file

    from zoorepro.llava_video.count_flops import meta_model

    model = meta_model(config)
    state = model.state_dict()
    std = float(getattr(config.text_config, "initializer_range", 0.02))
    groups = shards(state, int(max_shard_gb * 1e9))
    weight_map, total = {}, 0
    for i, names in enumerate(groups, 1):
        file = f"model-{i:05d}-of-{len(groups):05d}.safetensors"
        tensors = {n: fill(n, tuple(state[n].shape), torch.bfloat16, std, seed) for n in names}
        save_file(tensors, str(folder / file), metadata={"format": "pt"})
        total += sum(t.numel() * t.element_size() for t in tensors.values())
        weight_map.update({n: file for n in names})
        log(f"wrote {file}: {len(names)} tensors, {sum(t.numel() for t in tensors.values()) / 1e9:.3f} B parameters")
        del tensors
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    return index


def build_processor(tok, family: str):
    """The real checkpoints' processor settings: 336-px video frames (shortest edge 336, centre crop
    336 x 336), patch 14, the default feature strategy, the family's chat template."""
    from transformers import LlavaNextImageProcessor, LlavaNextVideoProcessor, LlavaNextVideoVideoProcessor

    from zoorepro.llava_video.count_flops import IMAGE, PATCH
    from zoorepro.llava_video.make_mini_model import CHAT_TEMPLATES

    size, crop = {"shortest_edge": IMAGE}, {"height": IMAGE, "width": IMAGE}
    video = LlavaNextVideoVideoProcessor(size=size, crop_size=crop)
    image = LlavaNextImageProcessor(size=size, crop_size=crop, image_grid_pinpoints=[[336, 672], [672, 336],
                                                                                     [672, 672], [1008, 336], [336, 1008]])
    return LlavaNextVideoProcessor(video_processor=video, image_processor=image, tokenizer=tok,
                                   chat_template=CHAT_TEMPLATES[family], patch_size=PATCH,
                                   vision_feature_select_strategy="default")


def write_checkpoint(folder: Path, ckpt: str, seed: int, max_shard_gb: float, force: bool = False, log=print) -> dict:
    from transformers import GenerationConfig

    from zoorepro.llava_video import count_flops as cf
    from zoorepro.llava_video.make_mini_model import build_tokenizer

    video_id, image_id = cf.TOKEN_IDS[ckpt]
    config = cf.full_size_config(ckpt)
    params = cf.parameters(cf.meta_model(config))
    need = 2 * params
    if need > host_memory() and not force:
        raise ZooreproError(
            f"LLaVA-NeXT-Video-{ckpt}: {need / 1e9:.1f} GB of bfloat16 weights do not fit this host's "
            f"{host_memory() / 2**30:.1f} GiB of memory: its shape run is refused here (its FLOPs are counted on "
            "paper: python -m zoorepro.llava_video.count_flops; claims/flops.yaml)")
    folder.mkdir(parents=True)
    tok = build_tokenizer(cf.FAMILY[ckpt], special_at=video_id)
    if tok.convert_tokens_to_ids("<video>") != video_id or tok.convert_tokens_to_ids("<image>") != image_id:
        raise ZooreproError("the shape tokenizer's <video>/<image> ids are not the real ones")
    config.text_config.bos_token_id, config.text_config.eos_token_id = tok.bos_token_id, tok.eos_token_id
    config.text_config.pad_token_id = tok.pad_token_id
    config.save_pretrained(folder)
    GenerationConfig(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                     pad_token_id=tok.pad_token_id).save_pretrained(folder)
    build_processor(tok, cf.FAMILY[ckpt]).save_pretrained(folder)
    write_weights(config, folder, seed, max_shard_gb, log)
    return {"parameters": params, "bytes_bf16": need}


def pattern_frames(n: int, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 [n, H, W, 3]: a colour gradient drifting with time and a moving square."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = rng.uniform(0, 255, 3)
    side = max(8, height // 6)
    frames = np.empty((n, height, width, 3), np.uint8)
    for t in range(n):
        phase = (xx + yy + 4 * t) / (width + height)
        img = (base[None, None, :] * 0.5 + 120 * np.sin(2 * np.pi * (phase[..., None] + np.arange(3) / 3)))
        x, y = (t * 7) % max(1, width - side), (t * 3) % max(1, height - side)
        img[y:y + side, x:x + side] = 255 - base
        frames[t] = np.clip(img, 0, 255).astype(np.uint8)
    return frames


def write_videobench(root: Path, seed: int, video_frames: int, width: int, height: int) -> int:
    """One question per Video-Bench subset in the real formats; returns the number of questions."""
    from zoorepro.llava_video import videobench as vb
    from zoorepro.llava_video.make_mini_data import QA_ROOT, VIDEO_ROOT, make_item, write_video

    rng = np.random.default_rng([seed, 13])
    qa_dir = root / QA_ROOT / vb.EVAL_QA_DIR
    qa_dir.mkdir(parents=True)
    answers = {}
    for subset in vb.SUBSETS:
        q_id, item = make_item(seed, subset, 0, 0)
        write_video(root / VIDEO_ROOT / item["vid_path"], pattern_frames(video_frames, height, width, rng))
        (qa_dir / f"{subset}{vb.QA_SUFFIX}").write_text(json.dumps({q_id: item}, indent=2) + "\n")
        answers[subset] = {q_id: {"answer": "A"}}
    (root / QA_ROOT / "ANSWER.json").write_text(json.dumps(answers, indent=2) + "\n")
    return len(vb.SUBSETS)


def make_shape(out: Path, ckpts: list[str], seed: int = 0, video_frames: int = 96, width: int = 640,
               height: int = 360, max_shard_gb: float = 2.0, force: bool = False) -> dict:
    from zoorepro.cli import hub_offline
    from zoorepro.fsutil import building_dir, write_tree_manifest
    from zoorepro.llava_video.make_mini_data import MODELS
    from zoorepro.llava_video.make_mini_model import folder_name

    hub_offline()
    if video_frames < 8 or width < 16 or height < 16:
        raise ZooreproError("--video-frames must be >= 8 and the size at least 16 x 16")
    with building_dir(Path(out)) as tmp:
        questions = write_videobench(tmp, seed, video_frames, width, height)
        sizes = {c: write_checkpoint(tmp / MODELS / folder_name(c), c, seed, max_shard_gb, force) for c in ckpts}
        params = {"seed": seed, "checkpoints": list(ckpts), "video_frames": video_frames, "width": width,
                  "height": height, "dtype": "bfloat16", "max_shard_gb": max_shard_gb}
        return write_tree_manifest(tmp, MANIFEST, {"generator": GENERATOR, "params": params, "sizes": sizes,
                                                   "questions": questions})


def main() -> int:
    from zoorepro.llava_video.count_flops import TEXT

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--ckpt", nargs="+", default=["7B"], choices=list(TEXT))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--video-frames", dest="video_frames", type=int, default=96)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--max-shard-gb", dest="max_shard_gb", type=float, default=2.0,
                        help="largest shard (GB); 2 keeps the generator near 2.5 GB of memory")
    parser.add_argument("--force", action="store_true", help="write a checkpoint larger than this host's memory")
    args = parser.parse_args()
    manifest = make_shape(args.out, args.ckpt, args.seed, args.video_frames, args.width, args.height,
                          args.max_shard_gb, args.force)
    print(f"wrote {args.out}: {manifest['questions']} questions, checkpoints "
          + ", ".join(f"{c} ({s['parameters'] / 1e9:.3f} B parameters)" for c, s in manifest["sizes"].items()))
    return 0


if __name__ == "__main__":
    run_step(main)
