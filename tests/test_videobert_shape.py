"""VideoBERT's shape scale: the generator's files in the formats the full scale reads, and the FLOPs
count of a CLIP-shaped video-bert.onnx against a hand count of both towers (the text batch runs once
a batch: a sample's FLOPs fall with the batch size)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from zoorepro import flops
from zoorepro.videobert import count_flops, make_shape
from zoorepro.videobert.cifar import OpenCifar

TINY = {"vision": {"image_size": 224, "patch_size": 32, "hidden_size": 32, "intermediate_size": 48,
                   "num_hidden_layers": 2, "num_attention_heads": 2},
        "text": {"vocab_size": 300, "hidden_size": 24, "intermediate_size": 40, "num_hidden_layers": 3,
                 "num_attention_heads": 2, "max_position_embeddings": 77, "bos_token_id": 298, "eos_token_id": 299},
        "projection_dim": 16}


@pytest.fixture(scope="module")
def shape_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("shape") / "videobert"
    make_shape.make_shape(out, TINY, seed=3, n_images=6)
    return out


def test_the_generated_set_and_model_are_in_the_full_scales_formats(shape_dir):
    from transformers import CLIPModel

    data = OpenCifar(shape_dir / "cifar-100-python")  # the restricted unpickler reads the pickles
    data.rebatch(3)
    feeds, labels = data.get_samples(0)
    assert feeds["image"].shape == (3, 3, 224, 224) and feeds["image"].dtype == np.float32
    assert feeds["text"].shape == (100, 77) and feeds["text"].dtype == np.int64
    text = feeds["text"]
    assert (text[:, 0] == 298).all() and (text.max(axis=1) == 299).all() and (text < 300).all()
    model = CLIPModel.from_pretrained(str(shape_dir / make_shape.MODEL_DIR), local_files_only=True)
    manifest = json.loads((shape_dir / "MANIFEST.json").read_text())
    assert manifest["params"]["parameters"] == sum(p.numel() for p in model.parameters())
    assert model.config.text_config.num_hidden_layers == 3 and model.config.vision_config.hidden_size == 32


def hand_count(bs: int) -> float:
    """2 x MACs of both towers, the projections and the logits matmul, written out from the sizes."""
    v, t, p = TINY["vision"], TINY["text"], TINY["projection_dim"]
    patches = (v["image_size"] // v["patch_size"]) ** 2
    n, h, i = patches + 1, v["hidden_size"], v["intermediate_size"]
    layer = 4 * 2 * n * h * h + 2 * 2 * n * n * h + 2 * 2 * n * h * i
    per_image = (2 * patches * 3 * v["patch_size"] ** 2 * h  # the patch embedding (a Conv)
                 + v["num_hidden_layers"] * layer + 2 * h * p  # layers, visual projection
                 + 2 * 100 * p)                                # the image's row of logits
    n, h, i = 77, t["hidden_size"], t["intermediate_size"]
    layer = 4 * 2 * n * h * h + 2 * 2 * n * n * h + 2 * 2 * n * h * i
    per_batch = 100 * (t["num_hidden_layers"] * layer + 2 * h * p)  # 100 prompts, text projection
    return bs * per_image + per_batch


def test_the_flops_count_matches_the_hand_count_at_each_batch_size(shape_dir, tmp_path):
    from zoorepro.videobert.export_onnx import export

    onnx = tmp_path / "video-bert.onnx"
    export(shape_dir / make_shape.MODEL_DIR, onnx)
    entry = count_flops.count_flops(onnx, [1, 4, 16])
    for bs in (1, 4, 16):
        assert entry["per_batch_size"][bs] == pytest.approx(hand_count(bs) / bs, rel=1e-9), bs
    # the text batch is paid once a batch: a sample costs less at a larger batch size
    assert entry["per_batch_size"][1] > entry["per_batch_size"][4] > entry["per_batch_size"][16]
    assert entry["flops_per_sample"] == entry["per_batch_size"][1]
    assert entry["method"] == flops.METHOD and "assumed" in entry["graph"]
