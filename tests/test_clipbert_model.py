"""ClipBERT's state-dict layout and numerics (zoorepro/clipbert/model.py).

The expected key set and shapes are written out here from ClipBERT's architecture (detectron2's
ResNet-50 C5 names, the unused RPN / attribute ROI heads GridFeatBackbone builds, the grid encoder,
ClipBERT's BERT with its visual embedding, the MLP classifier), independently of the model code:
a missing, extra or reshaped key fails. The base config is built on the meta device (no memory).
"""
from __future__ import annotations

import pytest
import torch

from zoorepro.clipbert.model import (
    ClipBertConfig,
    aggregate_clips,
    build_model,
    check_state_dict,
    load_checkpoint,
    load_pretrained,
    normalize,
    num_labels_for,
    training_loss,
)
from zoorepro.errors import ZooreproError

TINY = dict(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=24,
            max_position_embeddings=48, backbone_channel_in_size=64, max_grid_row_position_embeddings=8,
            max_grid_col_position_embeddings=8)


def expected_shapes(c: ClipBertConfig) -> dict[str, tuple]:
    """ClipBERT's frameqa state dict, key -> shape, for config c."""
    keys: dict[str, tuple] = {}

    def conv(name, cout, cin, k):
        keys[f"{name}.weight"] = (cout, cin, k, k)
        for buffer in ("weight", "bias", "running_mean", "running_var"):
            keys[f"{name}.norm.{buffer}"] = (cout,)

    w = c.backbone_channel_in_size // 32
    bb = "cnn.feature.backbone"
    conv(f"{bb}.stem.conv1", w, 3, 7)
    cin = w
    for stage, blocks in zip(range(2, 6), (3, 4, 6, 3)):
        mid, out = w * 2 ** (stage - 2), 4 * w * 2 ** (stage - 2)
        for b in range(blocks):
            name = f"{bb}.res{stage}.{b}"
            if b == 0:
                conv(f"{name}.shortcut", out, cin, 1)
            conv(f"{name}.conv1", mid, cin if b == 0 else out, 1)
            conv(f"{name}.conv2", mid, mid, 3)
            conv(f"{name}.conv3", out, mid, 1)
        cin = out
    c5, fc = c.backbone_channel_in_size, c.backbone_channel_in_size // 2
    pg, rh = "cnn.feature.proposal_generator", "cnn.feature.roi_heads"
    keys.update({
        f"{pg}.anchor_generator.cell_anchors.0": (15, 4),
        f"{pg}.rpn_head.conv.weight": (c5, c5, 3, 3), f"{pg}.rpn_head.conv.bias": (c5,),
        f"{pg}.rpn_head.objectness_logits.weight": (15, c5, 1, 1), f"{pg}.rpn_head.objectness_logits.bias": (15,),
        f"{pg}.rpn_head.anchor_deltas.weight": (60, c5, 1, 1), f"{pg}.rpn_head.anchor_deltas.bias": (60,),
        f"{rh}.box_head.fc1.weight": (fc, c5), f"{rh}.box_head.fc1.bias": (fc,),
        f"{rh}.box_head.fc2.weight": (fc, fc), f"{rh}.box_head.fc2.bias": (fc,),
        f"{rh}.box_predictor.cls_score.weight": (1601, fc), f"{rh}.box_predictor.cls_score.bias": (1601,),
        f"{rh}.box_predictor.bbox_pred.weight": (6400, fc), f"{rh}.box_predictor.bbox_pred.bias": (6400,),
        f"{rh}.attribute_predictor.obj_embed.weight": (1601, c5 // 8),
        f"{rh}.attribute_predictor.fc.0.weight": (c5 // 4, fc + c5 // 8),
        f"{rh}.attribute_predictor.fc.0.bias": (c5 // 4,),
        f"{rh}.attribute_predictor.attr_score.weight": (400, c5 // 4),
        f"{rh}.attribute_predictor.attr_score.bias": (400,),
        "cnn.grid_encoder.0.weight": (c.hidden_size, c5, 3, 3),
    })
    h, t = c.hidden_size, "transformer.bert"
    keys.update({
        f"{t}.embeddings.word_embeddings.weight": (c.vocab_size, h),
        f"{t}.embeddings.position_embeddings.weight": (c.max_position_embeddings, h),
        f"{t}.embeddings.token_type_embeddings.weight": (c.type_vocab_size, h),
        f"{t}.embeddings.LayerNorm.weight": (h,), f"{t}.embeddings.LayerNorm.bias": (h,),
        f"{t}.visual_embeddings.position_embeddings.weight": (c.max_position_embeddings, h),
        f"{t}.visual_embeddings.row_position_embeddings.weight": (c.max_grid_row_position_embeddings, h),
        f"{t}.visual_embeddings.col_position_embeddings.weight": (c.max_grid_col_position_embeddings, h),
        f"{t}.visual_embeddings.token_type_embeddings.weight": (1, h),
        f"{t}.visual_embeddings.LayerNorm.weight": (h,), f"{t}.visual_embeddings.LayerNorm.bias": (h,),
        f"{t}.pooler.dense.weight": (h, h), f"{t}.pooler.dense.bias": (h,),
        "transformer.classifier.0.weight": (2 * h, h), "transformer.classifier.0.bias": (2 * h,),
        "transformer.classifier.2.weight": (c.num_labels, 2 * h), "transformer.classifier.2.bias": (c.num_labels,),
    })
    for n in range(c.num_hidden_layers):
        layer = f"{t}.encoder.layer.{n}"
        for lin in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            keys[f"{layer}.{lin}.weight"], keys[f"{layer}.{lin}.bias"] = (h, h), (h,)
        keys[f"{layer}.intermediate.dense.weight"] = (c.intermediate_size, h)
        keys[f"{layer}.intermediate.dense.bias"] = (c.intermediate_size,)
        keys[f"{layer}.output.dense.weight"], keys[f"{layer}.output.dense.bias"] = (h, c.intermediate_size), (h,)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            keys[f"{layer}.{ln}.weight"], keys[f"{layer}.{ln}.bias"] = (h,), (h,)
    return keys


def shapes(model) -> dict[str, tuple]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_model(ClipBertConfig(num_labels=7, **TINY)).eval()


def test_the_base_model_has_clipberts_495_keys_and_shapes():
    config = ClipBertConfig(num_labels=num_labels_for(12911))
    with torch.device("meta"):
        model = build_model(config)
    expected = expected_shapes(config)
    assert len(expected) == 495
    assert shapes(model) == expected
    assert sum(torch.Size(s).numel() for s in expected.values()) == 219_297_927  # ~877 MB per fp32 model_step_N.pt


def test_the_tiny_model_keeps_the_real_names_at_reduced_widths(tiny):
    assert shapes(tiny) == expected_shapes(tiny.config)
    assert tiny.config.model_config()["backbone_channel_in_size"] == 64 and "num_labels" not in tiny.config.model_config()
    assert num_labels_for(12) == 1540 and num_labels_for(12911) == 12911


def test_a_checkpoint_round_trips_and_a_wrong_key_set_is_one_error_naming_each_difference(tiny, tmp_path):
    state = {k: v.clone() for k, v in tiny.state_dict().items()}
    torch.save(state, tmp_path / "model_step_3.pt")
    other = build_model(tiny.config).eval()
    load_checkpoint(other, tmp_path / "model_step_3.pt")
    assert all(torch.equal(other.state_dict()[k], v) for k, v in state.items())
    broken = dict(state)
    del broken["cnn.grid_encoder.0.weight"]
    broken["transformer.cls.seq_relationship.weight"] = torch.zeros(2, 16)
    broken["transformer.classifier.2.weight"] = torch.zeros(9, 32)
    torch.save(broken, tmp_path / "bad.pt")
    with pytest.raises(ZooreproError) as err:
        load_checkpoint(other, tmp_path / "bad.pt")
    message = str(err.value)
    assert "missing: cnn.grid_encoder.0.weight" in message
    assert "unexpected: transformer.cls.seq_relationship.weight" in message
    assert "wrong shape: transformer.classifier.2.weight (9, 32) (model (7, 32))" in message


def test_the_pretrained_checkpoint_loads_without_its_heads_and_anything_else_is_refused(tiny, tmp_path):
    state = {k: v for k, v in tiny.state_dict().items() if not k.startswith("transformer.classifier.")}
    state["transformer.cls.predictions.bias"] = torch.zeros(50)
    torch.save(state, tmp_path / "pretrained.pt")
    fresh = build_model(tiny.config)
    report = load_pretrained(fresh, tmp_path / "pretrained.pt")
    assert report["skipped_from_file"] == ["transformer.cls.predictions.bias"]
    assert report["kept_at_init"] == [f"transformer.classifier.{i}.{p}" for i in (0, 2) for p in ("bias", "weight")]
    assert torch.equal(fresh.state_dict()["cnn.grid_encoder.0.weight"], state["cnn.grid_encoder.0.weight"])
    state["cnn.feature.backbone.res9.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "other.pt")
    with pytest.raises(ZooreproError, match="res9"):
        load_pretrained(fresh, tmp_path / "other.pt")


def test_text_path_is_bert(tiny):
    """Text only, ClipBERT's BERT is transformers' BertModel (post-LN, erf GELU, additive mask)."""
    from transformers import BertConfig, BertModel

    config = tiny.config
    bert = BertModel(BertConfig(vocab_size=config.vocab_size, hidden_size=config.hidden_size,
                                num_hidden_layers=config.num_hidden_layers, num_attention_heads=config.num_attention_heads,
                                intermediate_size=config.intermediate_size, max_position_embeddings=config.max_position_embeddings,
                                layer_norm_eps=config.layer_norm_eps, attn_implementation="eager"),
                     add_pooling_layer=True).eval()
    ours = {k[len("transformer.bert."):]: v for k, v in tiny.state_dict().items() if k.startswith("transformer.bert.")
            and not k.startswith("transformer.bert.visual_embeddings.")}
    missing, unexpected = bert.load_state_dict(ours, strict=False)
    assert not unexpected and all("position_ids" in k or "token_type_ids" in k for k in missing)
    ids = torch.randint(1, config.vocab_size, (3, 9), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    with torch.no_grad():
        expected = bert(input_ids=ids, attention_mask=mask)
        sequence, pooled = tiny.transformer.bert(ids, mask)
    torch.testing.assert_close(pooled, expected.pooler_output, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(sequence[0], expected.last_hidden_state[0], rtol=1e-5, atol=1e-5)


def test_one_clip_forward_and_the_clip_aggregations(tiny):
    generator = torch.Generator().manual_seed(2)
    ids = torch.randint(1, 50, (2, 6), generator=generator)
    mask = torch.ones_like(ids)
    video = normalize(torch.randint(0, 256, (2, 4, 3, 128, 128), generator=generator).float())
    with torch.no_grad():
        logits = tiny.clip_logits(ids, mask, video, n_clips=2)
        assert logits.shape == (2, 2, 7)
        torch.testing.assert_close(logits[1], tiny(ids, mask, video[:, 2:4]))
        bgr = tiny.clip_logits(ids, mask, video[:, :, [2, 1, 0]], n_clips=2)
    assert not torch.allclose(bgr, logits)      # channel order matters (the BGR/RGB fault)
    assert torch.equal(aggregate_clips(logits, "mean"), logits.mean(0))
    assert torch.equal(aggregate_clips(logits, "max"), logits.max(0)[0])
    labels = torch.tensor([3, 5])
    lse = training_loss(logits, labels, "lse")
    probability = logits.permute(1, 0, 2).flatten(1).softmax(1).reshape(2, 2, 7).sum(1)  # over clips
    torch.testing.assert_close(lse, -probability[torch.arange(2), labels].log().mean())
    with pytest.raises(ZooreproError, match="do not split"):
        tiny.clip_logits(ids, mask, video, n_clips=3)


def test_check_state_dict_accepts_its_own(tiny):
    check_state_dict(tiny, tiny.state_dict(), "self")
