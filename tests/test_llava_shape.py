"""LLaVA-NeXT-Video at shape scale (zoorepro/llava_video/make_shape.py, count_flops.py): FLOPs counted
on the meta device checked against a hand count, the registry's per-unit entry read by the
plausibility check, the checkpoint writer at a tiny size (never the 7B in a test), the params."""
from __future__ import annotations

import copy
import dataclasses

import pytest
import yaml

from zoorepro.claims import load_claims
from zoorepro.config import PARAMS_PATH, validate
from zoorepro.errors import ConfigError, ZooreproError
from zoorepro.flops import load_registry
from zoorepro.llava_video import count_flops as cf
from zoorepro.llava_video import make_shape as ms
from zoorepro.plausibility import implied, why_not
from zoorepro.verdicts import IMPLAUSIBLE, plausibility


def tiny_config(layers: int = 1, heads: int = 4, kv: int = 2, hidden: int = 64, ffn: int = 96, vocab: int = 720):
    config = cf.full_size_config("7B", video_token=700, image_token=701)
    t = config.text_config
    t.num_hidden_layers, t.num_attention_heads, t.num_key_value_heads = layers, heads, kv
    t.hidden_size, t.intermediate_size, t.vocab_size, t.head_dim = hidden, ffn, vocab, hidden // heads
    v = config.vision_config
    v.num_hidden_layers, v.hidden_size, v.intermediate_size, v.num_attention_heads = 1, 32, 64, 2
    v.image_size = 56
    return config


def hand_layer(tokens: int, context: int, hidden: int, heads: int, kv: int, ffn: int) -> float:
    """One Llama decoder layer by hand: 2 x MACs of the q/k/v/o and gate/up/down projections for
    `tokens` new positions, plus Q.K^T and A.V against `context` keys (no causal saving)."""
    d = hidden // heads
    proj = tokens * hidden * (heads * d + 2 * kv * d) + tokens * heads * d * hidden + 3 * tokens * hidden * ffn
    attention = 2 * heads * tokens * context * d
    return 2.0 * (proj + attention)


def lm_count(layers: int, tokens: int, context: int | None = None) -> float:
    model = cf.meta_model(tiny_config(layers=layers))
    if context is None:
        return cf.count(model, 1, tokens, tokens)["lm_prefill"]
    return cf.per_token_flops(model, context)


@pytest.mark.parametrize("tokens", [7, 33])
def test_one_decoder_layer_of_the_prefill_count_equals_the_hand_count(tokens):
    one_layer = lm_count(2, tokens) - lm_count(1, tokens)  # the head and the embedding cancel
    assert one_layer == hand_layer(tokens, tokens, 64, 4, 2, 96)


def test_one_decoder_layer_of_a_generated_token_equals_the_hand_count_over_its_cache():
    one_layer = lm_count(2, 1, context=40) - lm_count(1, 1, context=40)
    assert one_layer == hand_layer(1, 41, 64, 4, 2, 96)  # the cache and the new position


@pytest.mark.parametrize("ckpt", ["7B", "34B"])
def test_the_recorded_flops_a_token_match_2x_the_lm_matmul_parameters_plus_attention(ckpt):
    entry = load_registry()["llava_video"]["checkpoints"][ckpt]
    t = cf.TEXT[ckpt]
    h, f, heads, kv, layers = (t["hidden_size"], t["intermediate_size"], t["num_attention_heads"],
                               t["num_key_value_heads"], t["num_hidden_layers"])
    context = entry["prefill_tokens"] + cf.DOCUMENT_NEW_TOKENS // 2 + 1
    head = 2.0 * h * t["vocab_size"]
    assert entry["flops_per_generated_token"] == layers * hand_layer(1, context, h, heads, kv, f) + head
    prompt = cf.video_tokens(8) + cf.DOCUMENT_TEXT_TOKENS
    assert entry["prefill_tokens"] == prompt == 1302
    # the LM's prefill: every layer over the prompt, the head on the last position only
    assert entry["lm_prefill_flops"] == layers * hand_layer(prompt, prompt, h, heads, kv, f) + head
    assert entry["prefill_flops"] == entry["vision_flops"] + entry["lm_prefill_flops"]


def test_the_registry_holds_7b_and_34b_with_their_sizes():
    entry = load_registry()["llava_video"]
    seven, big = entry["checkpoints"]["7B"], entry["checkpoints"]["34B"]
    assert seven["parameters"] == 7063431168  # next_stage.md A4: 7.063 B, 14.13 GB in bf16
    assert seven["weights_gb_bf16"] == 14.13 and big["weights_gb_bf16"] > 24 * 1.074  # 34B: not in 24 GiB
    assert 20e12 < seven["prefill_flops"] < 22e12 and 90e12 < big["prefill_flops"] < 100e12
    assert "FlopCounterMode" in entry["method"] and entry["counted_by"].endswith("count_flops")


def llava_claim(metric: str, value: float, unit: str = "tokens/s", target: str = "310P3", precision: str = "fp16"):
    base = next(c for c in load_claims() if c.model == "llava_video")
    return dataclasses.replace(base, id="llava_video.test", metric=metric, kind="throughput", value=value, unit=unit,
                               target=target, precision=precision, batch_size=1)


def test_a_tokens_per_second_claim_is_read_with_the_flops_of_a_generated_token():
    entry = load_registry()["llava_video"]["checkpoints"]["7B"]
    found = implied(llava_claim("7B generated tokens/s", 100.0))  # 310P3: 70 TFLOP/s fp16
    assert found.percent == pytest.approx(100 * 100.0 * entry["flops_per_generated_token"] / 70e12)
    assert found.unit == "generated token" and "GFLOP a generated token" in found.text()
    dpo = implied(llava_claim("7B-DPO generated tokens/s", 100.0))  # the same sizes as the 7B
    assert dpo.percent == found.percent
    prefill = implied(llava_claim("34B prefill tokens/s", 100.0))
    assert prefill.flops_per_sample == load_registry()["llava_video"]["checkpoints"]["34B"]["flops_per_prefill_token"]


def test_a_generated_tokens_claim_beyond_the_peak_is_implausible():
    c = llava_claim("7B generated tokens/s", 6000.0)  # 6000 x 13.9 GFLOP = 83 TFLOP/s > 70
    verdict, note = plausibility(c, "NOT_COMPARABLE")
    assert verdict == IMPLAUSIBLE and note.startswith("IMPLAUSIBLE: implies 119.")
    assert "read as generated tokens/s" in note


def test_a_checkpoint_or_metric_without_a_count_says_so():
    assert implied(llava_claim("7B-32K generated tokens/s", 10.0)) is None
    assert "no FLOPs count for '7B-32K generated tokens/s'" in why_not(llava_claim("7B-32K generated tokens/s", 10.0))
    assert implied(llava_claim("7B frames/s", 10.0, unit="frames/s")) is None


# ---- the generator, at a tiny size ------------------------------------------------------------


def test_norms_are_ones_biases_zeros_the_rest_random():
    assert ms.is_norm_or_bias("model.language_model.layers.0.input_layernorm.weight") == "ones"
    assert ms.is_norm_or_bias("model.vision_tower.vision_model.pre_layrnorm.weight") == "ones"
    assert ms.is_norm_or_bias("model.language_model.norm.weight") == "ones"
    assert ms.is_norm_or_bias("model.multi_modal_projector.linear_1.bias") == "zeros"
    assert ms.is_norm_or_bias("model.language_model.layers.0.self_attn.q_proj.weight") is None


def test_tensors_are_seeded_by_name_and_shards_keep_order_and_size():
    import torch

    a = ms.fill("x.weight", (3, 5), torch.bfloat16, 0.02, seed=0)
    assert torch.equal(a, ms.fill("x.weight", (3, 5), torch.bfloat16, 0.02, seed=0))
    assert not torch.equal(a, ms.fill("y.weight", (3, 5), torch.bfloat16, 0.02, seed=0))
    assert 0.005 < float(ms.fill("z.weight", (400, 400), torch.float32, 0.02, seed=1).std()) < 0.05
    state = {n: torch.empty(s, device="meta", dtype=torch.bfloat16) for n, s in
             (("a", (100,)), ("b", (300,)), ("c", (50,)), ("d", (10,)))}
    # bf16: 200, 600, 100, 20 bytes
    assert ms.shards(state, 700) == [["a"], ["b", "c"], ["d"]]
    assert ms.shards(state, 500) == [["a"], ["b"], ["c", "d"]]  # a tensor larger than a shard stands alone


def test_a_tiny_checkpoint_in_the_real_layout_loads_offline_in_bfloat16(tmp_path):
    import torch
    from transformers import GenerationConfig

    from zoorepro.llava_video.make_mini_model import build_tokenizer, load_checkpoint

    tok = build_tokenizer("vicuna", special_at=700)
    assert (tok.convert_tokens_to_ids("<video>"), tok.convert_tokens_to_ids("<image>")) == (700, 701)
    assert tok("what is the man doing").input_ids == build_tokenizer("vicuna")("what is the man doing").input_ids
    config = tiny_config()
    folder = tmp_path / "ckpt"
    folder.mkdir()
    config.save_pretrained(folder)
    GenerationConfig(bos_token_id=1, eos_token_id=2).save_pretrained(folder)
    ms.build_processor(tok, "vicuna").save_pretrained(folder)
    index = ms.write_weights(config, folder, seed=0, max_shard_gb=1e-4)
    files = sorted(set(index["weight_map"].values()))
    assert len(files) > 1 and all((folder / f).is_file() for f in files) and files[0].endswith(f"-of-{len(files):05d}.safetensors")
    model, processor = load_checkpoint(folder, dtype=torch.bfloat16)
    assert model.dtype == torch.bfloat16 and set(index["weight_map"]) == set(model.state_dict())
    assert torch.all(model.model.language_model.norm.weight == 1)


def test_a_checkpoint_larger_than_the_host_is_refused_naming_its_size(tmp_path, monkeypatch):
    monkeypatch.setattr(ms, "host_memory", lambda: 24 * 2**30)
    with pytest.raises(ZooreproError, match=r"LLaVA-NeXT-Video-34B: 69\.5 GB of bfloat16 weights do not fit .* 24\.0 "
                                            r"GiB.*count_flops"):
        ms.write_checkpoint(tmp_path / "34B", "34B", 0, 2.0)
    assert not (tmp_path / "34B").exists()


def test_synthetic_videos_have_the_asked_size_and_frame_count(tmp_path):
    from zoorepro.llava_video import videobench as vb
    from zoorepro.llava_video.frames import read_frames

    assert ms.write_videobench(tmp_path, 0, 16, 96, 64) == len(vb.SUBSETS)
    videos = sorted((tmp_path / "VideoBench").rglob("*.*"))
    assert len(videos) == len(vb.SUBSETS)
    assert read_frames(videos[0], 8).shape == (8, 64, 96, 3)


# ---- params ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mutate, key", [
    (lambda p: p["llava_video"]["shape"].__setitem__("checkpoints", ["7B-32K"]), "llava_video.shape.checkpoints[0]"),
    (lambda p: p["llava_video"]["shape"].__setitem__("max_new_tokens", 1), "llava_video.shape.max_new_tokens"),
    (lambda p: p["llava_video"]["shape"].__setitem__("questions", 14), "llava_video.shape.questions"),
    (lambda p: p["llava_video"]["shape"]["video"].__setitem__("frames", 4), "llava_video.shape.video.frames"),
    (lambda p: p["llava_video"]["shape"]["dtype"].__setitem__("npu", "bfloat16"), "llava_video.shape.dtype.npu"),
    (lambda p: p["llava_video"]["shape"].pop("seed"), "llava_video.shape"),
])
def test_bad_shape_params_name_the_key(mutate, key):
    params = copy.deepcopy(yaml.safe_load(PARAMS_PATH.read_text()))
    mutate(params)
    with pytest.raises(ConfigError) as err:
        validate(params)
    assert key in str(err.value)


def test_a_shape_checkpoint_the_rules_do_not_build_is_refused():
    params = copy.deepcopy(yaml.safe_load(PARAMS_PATH.read_text()))
    params["llava_video"]["checkpoints"] = ["7B"]
    params["llava_video"]["shape"]["checkpoints"] = ["34B"]
    with pytest.raises(ConfigError, match=r"shape\.checkpoints: '34B' is not in checkpoints"):
        validate(params)
