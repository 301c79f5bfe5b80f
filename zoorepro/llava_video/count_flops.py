"""FLOPs of LLaVA-NeXT-Video at its real sizes: per prefill (a question's video and prompt) and per
generated token, for the 7B and the 34B, counted on paper.

Method (METHOD): torch.utils.flop_counter.FlopCounterMode over forwards of transformers'
LlavaNextVideoForConditionalGeneration built on the meta device from the real dimensions (no
weights, no memory: the 34B is counted as cheaply as the 7B). FlopCounterMode counts 2 x the
multiply-accumulates of every matmul, linear, convolution and attention (scaled dot product) op at
the shapes the forward dispatches; element-wise ops, softmax, norms and the pooling are not counted.

* prefill = the video tower on `frames` frames (CLIP ViT-L/14-336, its patch convolution, the
  projector and the 2x2 pooling: get_video_features) + the language model over the whole prompt
  (video tokens + text) with the last position's logits only, as generate's first step runs it;
* a generated token = one language-model step (1 new position) over a KV cache of `context`
  positions, with its logits (the attention over the cache included).

Real sizes (../shared/upstream/next_stage.md §A4, llava_clipbert.md §3): the 7B is vicuna-7b-v1.5
(32 layers, hidden 4096, FFN 11008, 32 heads, vocab 32064, linear RoPE x2) on CLIP ViT-L/14-336
(24 layers, hidden 1024); the 34B is Nous-Hermes-2-Yi-34B (60 layers, hidden 7168, FFN 20480, 56
heads with 8 key/value heads, vocab 64064) on the same vision tower. A frame of 336 x 336 gives
24 x 24 patches pooled 2 x 2: 144 video tokens, 1152 for the document's 8 frames.

Usage:
    python -m zoorepro.llava_video.count_flops [--ckpt 7B 34B] [--text-tokens 150] [--frames 8] \\
        [--new-tokens 60] [--record claims/flops.yaml]
"""
from __future__ import annotations

import argparse
from pathlib import Path

from zoorepro.cli import run_step

METHOD = ("torch.utils.flop_counter.FlopCounterMode over transformers' LlavaNextVideoForConditionalGeneration "
          "built on the meta device at the real sizes: 2 x multiply-accumulates of every matmul, linear, "
          "convolution and scaled-dot-product attention op; element-wise ops, softmax, norms and pooling not counted")
IMAGE = 336
PATCH = 14
POOL = 2
VISION = {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24, "num_attention_heads": 16,
          "image_size": IMAGE, "patch_size": PATCH, "projection_dim": 768, "hidden_act": "quick_gelu",
          "layer_norm_eps": 1e-5}
# The language models of the document's checkpoints (7B-32K and the DPO variants share these sizes;
# the shape chain builds 7B and 34B).
TEXT = {
    "7B": {"vocab_size": 32064, "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
           "num_attention_heads": 32, "num_key_value_heads": 32, "max_position_embeddings": 4096,
           "rms_norm_eps": 1e-5, "rope_scaling": {"rope_type": "linear", "factor": 2.0}},
    "34B": {"vocab_size": 64064, "hidden_size": 7168, "intermediate_size": 20480, "num_hidden_layers": 60,
            "num_attention_heads": 56, "num_key_value_heads": 8, "max_position_embeddings": 4096,
            "rms_norm_eps": 1e-5, "rope_theta": 5000000.0},
}
# <video>, <image> in the real tokenizers (the 34B's Yi vocabulary is 64000 + added tokens).
TOKEN_IDS = {"7B": (32000, 32001), "34B": (64000, 64001)}
FAMILY = {"7B": "vicuna", "34B": "chatml"}
# How a claimed metric "<checkpoint> <name>" is read (zoorepro/plausibility.py unit_flops): which count
# one unit of its rate costs. A question = its prefill + the document's 60 new tokens (59 decode steps).
METRICS = {
    "generated tokens/s": {"flops": "flops_per_generated_token", "unit": "generated token"},
    "decode tokens/s": {"flops": "flops_per_generated_token", "unit": "generated token"},
    "prefill tokens/s": {"flops": "flops_per_prefill_token", "unit": "prompt token"},
    "questions/s": {"flops": "flops_per_question", "unit": "question"},
}
SAME_SIZES = {"7B-DPO": "7B", "34B-DPO": "34B"}  # DPO fine-tunes: the same architecture and sizes
NOT_COUNTED = {"7B-32K": "its language model's sizes are not among the researched facts (another base model "
                         "than vicuna-7b): not counted"}
DOCUMENT_TEXT_TOKENS = 150   # ~ the document's prompt (template, question, choices, suffix) in Llama tokens
DOCUMENT_NEW_TOKENS = 60     # llava_gpu's max_new_tokens


def video_tokens(frames: int, image: int = IMAGE) -> int:
    """<video> tokens of `frames` frames: (image/patch)^2 / pool^2 each."""
    return frames * (image // PATCH) ** 2 // POOL ** 2


def full_size_config(ckpt: str, video_token: int | None = None, image_token: int | None = None, dtype="bfloat16"):
    """The LlavaNextVideoConfig of a checkpoint at its real sizes (token ids default to the real ones)."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaNextVideoConfig

    if ckpt not in TEXT:
        raise ValueError(f"no real sizes known for {ckpt!r} (known: {', '.join(TEXT)})")
    video_id, image_id = TOKEN_IDS[ckpt]
    config = LlavaNextVideoConfig(
        vision_config=CLIPVisionConfig(**VISION), text_config=LlamaConfig(**TEXT[ckpt]),
        video_token_index=video_id if video_token is None else video_token,
        image_token_index=image_id if image_token is None else image_token,
        vision_feature_layer=-2, vision_feature_select_strategy="default", spatial_pool_mode="average",
        spatial_pool_stride=POOL, image_seq_length=(IMAGE // PATCH) ** 2, video_seq_length=(IMAGE // PATCH) ** 2 // 2,
        image_grid_pinpoints=[[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]], tie_word_embeddings=False)
    config.dtype = dtype
    return config


def meta_model(config):
    """The model on the meta device (no weights allocated), in eval mode."""
    import torch
    from transformers import LlavaNextVideoForConditionalGeneration

    with torch.device("meta"):
        model = LlavaNextVideoForConditionalGeneration(config)
    return model.to(torch.bfloat16).eval()


def _count(fn) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        fn()
    return float(counter.get_total_flops())


def count(model, frames: int, prompt_tokens: int, context: int) -> dict:
    """{vision, lm_prefill, prefill, per_token} FLOPs of `model` (any device; meta costs nothing):
    the video tower on `frames` frames, the LM over `prompt_tokens` positions (last logits only), and
    one generated token over a cache of `context` positions."""
    import torch

    cfg = model.config
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    size = cfg.vision_config.image_size
    hidden = cfg.text_config.hidden_size
    pixels = torch.zeros(1, frames, 3, size, size, dtype=dtype, device=device)
    vision = _count(lambda: model.model.get_video_features(pixel_values_videos=pixels))
    embeds = torch.zeros(1, prompt_tokens, hidden, dtype=dtype, device=device)
    lm = _count(lambda: model(inputs_embeds=embeds, use_cache=True, logits_to_keep=1))  # as generate
    per_token = per_token_flops(model, context)
    return {"vision": vision, "lm_prefill": lm, "prefill": vision + lm, "per_token": per_token}


def per_token_flops(model, context: int) -> float:
    """One generated token's FLOPs over a KV cache of `context` positions."""
    import torch
    from transformers import DynamicCache

    cfg = model.config.text_config
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    heads, kv = cfg.num_attention_heads, cfg.num_key_value_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    cache = DynamicCache()
    for layer in range(cfg.num_hidden_layers):
        k = torch.zeros(1, kv, context, head_dim, dtype=dtype, device=device)
        cache.update(k, k.clone(), layer)
    step = torch.zeros(1, 1, cfg.hidden_size, dtype=dtype, device=device)
    position = torch.tensor([[context]], device=device)
    return _count(lambda: model(inputs_embeds=step, past_key_values=cache, use_cache=True, position_ids=position,
                                cache_position=position[0]))


def parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def entry(ckpt: str, frames: int, text_tokens: int, new_tokens: int) -> dict:
    """A checkpoint's registry entry at the document's shapes (meta device)."""
    model = meta_model(full_size_config(ckpt))
    prompt = video_tokens(frames) + text_tokens
    counted = count(model, frames, prompt, prompt + new_tokens // 2)
    params = parameters(model)
    return {"prefill_flops": counted["prefill"], "vision_flops": counted["vision"],
            "lm_prefill_flops": counted["lm_prefill"], "flops_per_generated_token": counted["per_token"],
            "prefill_tokens": prompt, "flops_per_prefill_token": counted["prefill"] / prompt,
            "flops_per_question": counted["prefill"] + (new_tokens - 1) * counted["per_token"],
            "parameters": params, "weights_gb_bf16": round(2 * params / 1e9, 2),
            "shapes": f"{frames} frames of {IMAGE}x{IMAGE} ({video_tokens(frames)} video tokens) + {text_tokens} text "
                      f"tokens = a {prompt}-token prefill; a generated token at a context of {prompt + new_tokens // 2} "
                      f"(the middle of {new_tokens} new tokens)"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", nargs="+", default=list(TEXT), choices=list(TEXT))
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--text-tokens", type=int, default=DOCUMENT_TEXT_TOKENS)
    parser.add_argument("--new-tokens", type=int, default=DOCUMENT_NEW_TOKENS)
    parser.add_argument("--record", type=Path, help="write the llava_video entry into this FLOPs registry")
    args = parser.parse_args()
    counted = {}
    for ckpt in args.ckpt:
        counted[ckpt] = entry(ckpt, args.frames, args.text_tokens, args.new_tokens)
        e = counted[ckpt]
        print(f"{ckpt}: {e['parameters'] / 1e9:.3f} B parameters ({e['weights_gb_bf16']} GB bf16); prefill "
              f"{e['prefill_flops'] / 1e12:.3f} TFLOP (vision {e['vision_flops'] / 1e12:.3f}, LM "
              f"{e['lm_prefill_flops'] / 1e12:.3f}); {e['flops_per_generated_token'] / 1e9:.2f} GFLOP a generated "
              f"token; {e['shapes']}")
    if args.record:
        from zoorepro.flops import write_unit_entry

        write_unit_entry(args.record, "llava_video", {
            "checkpoints": counted,
            "same_sizes": SAME_SIZES,
            "not_counted": NOT_COUNTED,
            "metrics": METRICS,
            "method": METHOD, "counted_by": "python -m zoorepro.llava_video.count_flops"})
        print(f"recorded in {args.record}")
    return 0


if __name__ == "__main__":
    run_step(main)
