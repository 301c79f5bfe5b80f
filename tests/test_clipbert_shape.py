"""ClipBERT's shape scale (the full-size model, random weights, generated data at the document's
sizes) and its FLOPs: the meta-device count against a real forward and against a hand count of one
BERT layer and of the grid encoder, the registry entry, the cpu path's % of peak rows, the files
make_shape writes in the formats the full-scale steps load, and the params block's validation."""
from __future__ import annotations

import copy
import io

import pytest
import torch
import yaml
from test_clipbert_model import TINY

from zoorepro.clipbert.compute import batch_flops, document_counts, forward_flops
from zoorepro.clipbert.model import (
    BASE_MODEL,
    ClipBertConfig,
    _classes,
    build_model,
    load_pretrained,
    num_labels_for,
)
from zoorepro.config import PARAMS_PATH, validate
from zoorepro.errors import ConfigError

BASE = ClipBertConfig.from_model_config(dict(BASE_MODEL), num_labels_for(12911))


@pytest.fixture(scope="module")
def counts():
    return document_counts()


def test_the_meta_device_count_equals_a_real_forwards():
    config = ClipBertConfig.from_model_config({**TINY}, num_labels_for(10))
    model = build_model(config).eval()
    ids, mask = torch.ones(2, 6, dtype=torch.long), torch.ones(2, 6, dtype=torch.long)
    video = torch.zeros(2, 4, 3, 64, 96)
    real = forward_flops(lambda: model.clip_logits(ids, mask, video, 4))
    assert real > 0 and batch_flops(config, 6, (2, 4, 3, 64, 96), 4) == real


def test_one_bert_layer_of_the_full_size_model_matches_the_hand_count():
    """BERT-base at 89 tokens (40 text + the 7x7 grid of a 448x448 frame): Q, K, V and output
    projections, QK^T and attention x V, the two feed-forward matmuls."""
    d, ff, n, b = 768, 3072, 40 + 49, 2
    with torch.device("meta"):
        layer = _classes()["Layer"](BASE)
        x, mask = torch.zeros(b, n, d), torch.zeros(b, 1, 1, n)
    hand = b * (4 * 2 * n * d * d + 2 * 2 * n * n * d + 2 * 2 * n * d * ff)
    assert forward_flops(lambda: layer(x, mask)) == hand


def test_the_grid_encoder_and_the_whole_question_match_their_hand_counts(counts):
    """The grid encoder's conv3x3 2048 -> 768 on res5's 14x14 map of a 448x448 frame; a question
    (16 clips of 1 frame) is 16 x (ResNet-50 C5 + grid encoder + 12 BERT layers + pooler + MLP head)."""
    with torch.device("meta"):
        encoder = build_model(BASE).cnn.grid_encoder
        res5 = torch.zeros(1, 2048, 14, 14)
    conv = 2 * 2048 * 768 * 9 * 14 * 14
    assert forward_flops(lambda: encoder(res5)) == conv
    d, ff, n = 768, 3072, 89
    bert = 12 * (4 * 2 * n * d * d + 2 * 2 * n * n * d + 2 * 2 * n * d * ff)
    head = 2 * d * d + 2 * d * 2 * d + 2 * 2 * d * 12911         # pooler, MLP 768 -> 1536 -> 12911
    with torch.device("meta"):
        backbone = build_model(BASE).cnn.feature.backbone
        frame = torch.zeros(1, 3, 448, 448)
    resnet = forward_flops(lambda: backbone(frame))
    assert 29e9 < resnet < 32e9     # ResNet-50's convolutions: ~3.86 G multiply-adds at 224x224, x4 pixels, x2
    assert counts["question"] == pytest.approx(16 * (resnet + conv + bert + head))
    assert counts["train_sample"] == pytest.approx(3 * 4 * (2 * (resnet + conv) + bert + head))


def test_the_registry_holds_the_count_and_its_method(counts):
    from zoorepro.flops import load_registry

    entry = load_registry()["clipbert"]
    assert entry["flops_per_sample"] == pytest.approx(counts["question"])
    assert entry["per_batch_size"][64] == pytest.approx(counts["question"])
    assert entry["parameters"] == counts["parameters"]
    assert "FlopCounterMode" in entry["method"] and entry["counted_by"] == "python -m zoorepro.clipbert.compute"


def test_the_cpu_rows_take_the_targets_peak_and_every_process_rate():
    from zoorepro.clipbert.run_video_qa import peak_rows
    from zoorepro.peaks import Peak

    peak = Peak("cpu", "fp32", 300e9, "measured on this host")
    common = {"precision": "float32", "batch_size": 2, "raw": ("r.json",)}
    (row,) = peak_rows("inference", 0.1, {"timer": {"flops_per_item": 830e9}}, None, "float32", common, peak, 2)
    assert row.metric == "inference % of peak" and row.value == pytest.approx(100 * 0.1 * 830e9 / 300e9)
    assert "all 2 process(es)" in row.note and "measured on this host" in row.note
    (row,) = peak_rows("finetune", 0.1, {"timer": {"flops_per_item": 3e12}}, None, "float32", common, peak, 2)
    assert row.value == pytest.approx(100.0) and "x3 for the backward" in row.note
    assert peak_rows("inference", 0.1, {"timer": {}}, None, "float32", common, peak, 2) == []
    # a GPU: one process's rate over one GPU's peak
    (row,) = peak_rows("inference", 200.0, {"timer": {"flops_per_item": 1e9}}, "NVIDIA H200", "bfloat16", common,
                       None, 4)
    assert row.value == pytest.approx(100 * 50.0 * 1e9 / 989.5e12)


def test_shape_files_have_anetqas_answer_list_bert_base_vocab_size_and_the_e2e_layout():
    from zoorepro.clipbert.make_shape import ANSWERS, VOCAB_SIZE, answer_list, e2e_state, vocabulary

    answers = answer_list()
    assert len(answers) == ANSWERS == 12911 and answers[:3] == ["<UNK>", "yes", "no"]
    assert len(set(answers)) == len(answers) and num_labels_for(len(answers)) == 12911
    vocab = vocabulary([{"question": "what is the man holding?"}])
    assert len(vocab) == VOCAB_SIZE == BASE_MODEL["vocab_size"] and "holding" in vocab and vocab[0] == "[PAD]"
    # the e2e checkpoint the finetune loads (fail-closed: only the pretraining heads extra, the QA head missing)
    model = build_model(ClipBertConfig.from_model_config({**TINY}, num_labels_for(10)))
    state = e2e_state(model)
    fresh = build_model(ClipBertConfig.from_model_config({**TINY}, num_labels_for(10)))
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    skipped = load_pretrained(fresh, buffer)
    assert skipped["kept_at_init"] and all(k.startswith("transformer.classifier.") for k in skipped["kept_at_init"])
    assert all(k.startswith("transformer.cls.") for k in skipped["skipped_from_file"])
    key = "transformer.bert.encoder.layer.0.attention.self.query.weight"
    assert torch.equal(fresh.state_dict()[key], model.state_dict()[key])


@pytest.mark.parametrize("mutate, key", [
    (lambda p: p["clipbert"].pop("shape"), "clipbert"),
    (lambda p: p["clipbert"]["shape"].__setitem__("video_frames", 8), "clipbert.shape.video_frames"),
    (lambda p: p["clipbert"]["shape"].__setitem__("video_size", [640]), "clipbert.shape.video_size"),
    (lambda p: p["clipbert"]["shape"].__setitem__("inference_batch_size", 0), "clipbert.shape.inference_batch_size"),
    (lambda p: p["clipbert"]["finetune"].pop("shape"), "clipbert.finetune"),
    (lambda p: p["clipbert"]["frames"]["size"].__setitem__("shape", 32), "clipbert.frames.size.shape"),
])
def test_the_shape_params_are_validated(mutate, key):
    params = copy.deepcopy(yaml.safe_load(PARAMS_PATH.read_text()))
    mutate(params)
    with pytest.raises(ConfigError) as err:
        validate(params)
    assert key in str(err.value)


def test_the_shape_table_is_listed_and_the_shape_finetune_keeps_the_documents_sizes():
    params = yaml.safe_load(PARAMS_PATH.read_text())
    assert params["tables"]["shape"]["clipbert"] == ["cpu"]
    shape, full = params["clipbert"]["finetune"]["shape"], params["clipbert"]["finetune"]["full"]
    for key in ("max_txt_len", "max_img_size", "num_frm", "train_n_clips", "fp16", "score_agg_func"):
        assert shape[key] == full[key], key
    assert params["clipbert"]["frames"]["size"]["shape"] == params["clipbert"]["frames"]["size"]["full"]
