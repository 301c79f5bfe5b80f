"""FLOPs of ActBERT's MSR-VTT test forward, counted while PaddleVideo's own model runs it.

Method (METHOD): 2 x the multiply-accumulates of every nn.Linear call and every paddle.matmul call
the forward executes, at the shapes they actually receive (forward post-hooks on the Linear layers;
paddle.matmul, which the attention and the masked-LM head call, wrapped while counting, broadcast
batch dimensions included). Embedding lookups, element-wise ops, GELU, softmax, layer norm and
interpolation are not counted: the same items as the ONNX count of the other models
(zoorepro/flops.py: MatMul, Gemm).

Why counted at run time: a caption's test batch is the caption (text [1, 36]) against every video
of the csv (ActBert.test_step squeezes the videos into the batch dimension). The text stays batch
1 through the first ten text layers and is broadcast against the videos only inside the first
connection layer, and the forward also runs the masked-LM, region and action heads that the metric
never reads (the LM head alone is a 768 x 30522 matmul per token and video). Hooks see exactly what
runs. The count is affine in the number of videos N: fixed + N x per_video. The step runs the test
forward at N = 1 and 2, solves for both, and checks the line at N = 3 (refusing a count that is
not affine).

Outputs: --out JSON (fixed and per-video FLOPs, per caption at --videos, parameters, method);
with --record, the model's entry in claims/flops.yaml (a sample = a caption against --videos videos).

Usage: python -m zoorepro.actbert.count_flops --config zoorepro/actbert/configs/actbert_msrvtt.yaml \
           --src work/src/actbert --out work/shape/actbert/flops.json [--videos 1000] [--record claims/flops.yaml]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
from pathlib import Path

from zoorepro.cli import run_step
from zoorepro.errors import ZooreproError

METHOD = ("2 x multiply-accumulates of every nn.Linear and paddle.matmul call of PaddleVideo's eager test "
          "forward at the test's shapes (forward hooks and a matmul wrapper; broadcast batch dims included); "
          "embeddings, element-wise ops, softmax and normalization not counted")
COUNTED_BY = "python -m zoorepro.actbert.count_flops"
# MSRVTTDataset's defaults: max_seq_length, max_region_num (the global feature included), max_action_num,
# the feature widths and the box's 5 spatial values.
TEXT_TOKENS, REGIONS, ACTIONS, FEATURE_DIM, SPATIALS = 36, 36, 5, 2048, 5


def linear_flops(input_shape, weight_shape) -> int:
    """2 x MACs of y = x @ W (+ b) with W [in, out] (paddle's layout): every row of x times W."""
    rows = math.prod(input_shape[:-1])
    return 2 * rows * int(weight_shape[0]) * int(weight_shape[1])


def matmul_flops(x_shape, y_shape, transpose_x: bool = False, transpose_y: bool = False) -> int:
    """2 x MACs of paddle.matmul(x, y) with numpy broadcasting of the batch dimensions (both at least 2-D)."""
    x, y = list(x_shape), list(y_shape)
    if len(x) < 2 or len(y) < 2:
        raise ZooreproError(f"matmul of {x} and {y}: only operands of 2 or more dimensions are counted")
    if transpose_x:
        x[-2], x[-1] = x[-1], x[-2]
    if transpose_y:
        y[-2], y[-1] = y[-1], y[-2]
    m, k, n = x[-2], x[-1], y[-1]
    if y[-2] != k:
        raise ZooreproError(f"matmul of {x_shape} and {y_shape}: inner dimensions {k} and {y[-2]} differ")
    batch_x, batch_y = x[:-2], y[:-2]
    width = max(len(batch_x), len(batch_y))
    batch_x = [1] * (width - len(batch_x)) + batch_x
    batch_y = [1] * (width - len(batch_y)) + batch_y
    batch = math.prod(max(a, b) for a, b in zip(batch_x, batch_y))
    return 2 * batch * m * k * n


@contextlib.contextmanager
def counting(model):
    """Count the FLOPs of whatever runs inside the block: yields a dict whose "total" grows with
    every Linear call of `model` and every paddle.matmul call (any caller)."""
    import paddle
    from paddle import nn

    tally = {"total": 0, "linear": 0, "matmul": 0, "calls": 0}

    def on_linear(layer, inputs, output):
        flops = linear_flops(inputs[0].shape, layer.weight.shape)
        tally["linear"] += flops
        tally["total"] += flops
        tally["calls"] += 1

    real_matmul = paddle.matmul

    def counted_matmul(x, y, transpose_x=False, transpose_y=False, name=None):
        flops = matmul_flops(x.shape, y.shape, transpose_x, transpose_y)
        tally["matmul"] += flops
        tally["total"] += flops
        tally["calls"] += 1
        return real_matmul(x, y, transpose_x=transpose_x, transpose_y=transpose_y, name=name)

    hooks = [layer.register_forward_post_hook(on_linear) for layer in model.sublayers(include_self=True)
             if isinstance(layer, nn.Linear)]
    # The backbone calls it as paddle.matmul and paddle.tensor.matmul (the same function).
    patched = [(paddle, "matmul"), (paddle.tensor, "matmul")]
    saved = [getattr(module, name) for module, name in patched]
    for module, name in patched:
        setattr(module, name, counted_matmul)
    try:
        yield tally
    finally:
        for (module, name), original in zip(patched, saved):
            setattr(module, name, original)
        for hook in hooks:
            hook.remove()


def test_batch(n_videos: int, vocab_size: int, seed: int = 0) -> list:
    """One caption's test batch as the data loader hands it to ActBert.test_step (batch size 1):
    caption, action features, region features, locations, segment ids, text mask, image mask,
    action mask, target; random values of the real dtypes."""
    import numpy as np
    import paddle

    rng = np.random.default_rng(seed)
    n = n_videos
    arrays = [rng.integers(1, vocab_size, (1, TEXT_TOKENS)).astype("int64"),
              rng.standard_normal((1, n, ACTIONS, FEATURE_DIM), np.float32),
              rng.standard_normal((1, n, REGIONS, FEATURE_DIM), np.float32),
              rng.random((1, n, REGIONS, SPATIALS), np.float32),
              np.zeros((1, TEXT_TOKENS), "int64"), np.ones((1, TEXT_TOKENS), "int64"),
              np.ones((1, n, REGIONS), "int64"), np.ones((1, n, ACTIONS), "int64"), np.zeros((1, n))]
    return [paddle.to_tensor(a) for a in arrays]


def count_test_forward(model, n_videos: int, vocab_size: int) -> dict:
    """The counted FLOPs of one caption's test forward against `n_videos` videos."""
    import paddle

    with paddle.no_grad(), counting(model) as tally:
        model(test_batch(n_videos, vocab_size), mode="test")
    return dict(tally)


def affine_count(model, vocab_size: int) -> dict:
    """fixed and per-video FLOPs from the forwards at 1 and 2 videos, checked at 3."""
    one, two, three = (count_test_forward(model, n, vocab_size)["total"] for n in (1, 2, 3))
    per_video = two - one
    fixed = one - per_video
    if fixed + 3 * per_video != three or per_video <= 0:
        raise ZooreproError(f"the counted FLOPs are not affine in the number of videos (1: {one}, 2: {two}, "
                            f"3: {three}): the forward is not the one this count assumes")
    return {"fixed": fixed, "per_video": per_video, "check": {"videos": 3, "counted": three}}


def registry_entry(result: dict) -> dict:
    """claims/flops.yaml's entry: a sample is one caption scored against `videos` videos."""
    n = result["videos"]
    return {"flops_per_sample": result["per_caption"], "per_batch_size": {1: result["per_caption"]},
            "parameters": result["parameters"],
            "shapes": (f"a caption ({TEXT_TOKENS} tokens) against {n} videos ({REGIONS} regions x {FEATURE_DIM}, "
                       f"{ACTIONS} actions x {FEATURE_DIM}), test_batch_size 1; "
                       f"{result['fixed'] / 1e9:.4g} GFLOP once + {result['per_video'] / 1e9:.4g} GFLOP a video"),
            "graph": ("PaddleVideo's ActBert (BertForMultiModalPreTraining at actbert_msrvtt.yaml's sizes, random "
                      "weights), its eager test forward with every head the test runs"),
            "method": METHOD, "counted_by": COUNTED_BY}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=Path("zoorepro/actbert/configs/actbert_msrvtt.yaml"),
                        help="PaddleVideo config whose MODEL is counted")
    parser.add_argument("--src", type=Path, default=Path("work/src/actbert"),
                        help="patched PaddleVideo sources (the actbert sources step)")
    parser.add_argument("--videos", type=int, default=1000, help="videos a caption is scored against (1k-A: 1000)")
    parser.add_argument("--out", type=Path, required=True, help="the count (JSON)")
    parser.add_argument("--record", type=Path, help="also set actbert's entry in this FLOPs registry")
    args = parser.parse_args()
    from zoorepro.actbert.make_mini_model import build_model
    from zoorepro.actbert.sources import activate
    from zoorepro.fsutil import atomic_write_text

    activate(args.src)
    model = build_model(args.config, seed=0)
    model.eval()
    vocab_size = int(model.backbone.bert.embeddings.word_embeddings.weight.shape[0])
    count = affine_count(model, vocab_size)
    result = {"config": str(args.config), "videos": args.videos,
              "per_caption": count["fixed"] + args.videos * count["per_video"], **count,
              "parameters": sum(int(p.size) for p in model.parameters()), "method": METHOD}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(f"{result['per_caption'] / 1e9:.4g} GFLOP a caption against {args.videos} videos "
          f"({count['fixed'] / 1e9:.4g} once + {count['per_video'] / 1e9:.4g} a video); {METHOD}")
    if args.record is not None:
        from zoorepro.flops import write_entry

        write_entry(args.record, "actbert", registry_entry(result))
        print(f"recorded in {args.record}")
    return 0


if __name__ == "__main__":
    run_step(main)
