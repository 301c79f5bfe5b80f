"""The two readings of LLaVA-NeXT-Video answers (zoorepro/llava_video/judging.py) and the steps
that turn them into table rows: hand-computed cases of the document's precision test, quirks included,
and of the corrected reading."""
import json

import pytest

from zoorepro.errors import ZooreproError
from zoorepro.llava_video import judging
from zoorepro.llava_video.llava_video_precision_test import precision_records
from zoorepro.llava_video.videobench_score import score_records


@pytest.mark.parametrize("answer, letter", [
    ([" A. Shrubs"], "A"),              # ' A.' (list3), position 1
    (["The answer is B"], "B"),         # 'is B' (list2)
    (["CA"], "A"),                      # shorter than 5: the first of A..E contained, alphabetically
    (["  B.  Trees  "], "B"),           # double spaces collapsed, then ' B.'
    (["F. six"], False),                # F is never recognised
    ([" F"], False),
    (["D</s>"], "D"),                   # </s> removed, then short
    (["nothing here at all"], False),   # unparsed: left out
    (" C", False),                      # an NPU string: [0] is ' ', which holds no letter
    ("C. the third", "C"),              # an NPU string starting with its letter: [0] = 'C'
])
def test_document_letter(answer, letter):
    assert judging.document_letter(answer) == letter


@pytest.mark.parametrize("answer, letter", [
    ([" A. Shrubs"], "A"), (["The answer is B"], "B"), (["CA"], None), (["F. six"], "F"), (" C", "C"),
    ("(E)", "E"), ([" D) a dog"], "D"), (["B. yes, not A."], "B"), (["nothing"], None), ("<|im_end|>A", "A"),
])
def test_corrected_letter(answer, letter):
    assert judging.corrected_letter(answer) == letter


def _eval(answers: dict, as_string=False) -> dict:
    return {f"{subset}/{q}": {"video_id": q, "question": "?", "dataset": subset,
                              "output_sequence": a if as_string else [a]} for (subset, q), a in answers.items()}


ANSWERS = {"MSVD": {"1": {"answer": "A"}, "2": {"answer": "B"}}, "MOT": {"3": {"answer": "F"}},
           "TVQA": {"4": {"answer": "C"}}}


def test_document_accuracy_denominator_and_quirks():
    gpu = _eval({("MSVD", "1"): " A. x", ("MSVD", "2"): " A. x", ("MOT", "3"): " F. x", ("TVQA", "4"): " C. x"})
    npu = _eval({("MSVD", "1"): "A. x", ("MSVD", "2"): " B", ("MOT", "3"): "F", ("TVQA", "4"): "C. x"},
                as_string=True)
    doc = judging.document_accuracy(npu, gpu, ANSWERS)
    # parsed in both: 1 and 4 (npu '2' is ' ' -> unparsed; '3' F never parsed on either side)
    assert doc["denominator"] == 2 and doc["gpu"] == 1.0 and doc["npu"] == 1.0
    # the corrected reading counts all four: GPU 1 (A), 3 (F), 4 (C) right, 2 wrong
    assert judging.corrected_accuracy(gpu, ANSWERS)["accuracy"] == 0.75
    assert judging.corrected_accuracy(npu, ANSWERS)["accuracy"] == 1.0
    assert judging.agreement(npu, gpu)["agreement"] == 0.75


def test_document_accuracy_without_overlap_is_an_error():
    gpu = _eval({("MSVD", "1"): "nothing parseable"})
    with pytest.raises(ZooreproError, match="divides by zero"):
        judging.document_accuracy(gpu, gpu, {"MSVD": {"1": {"answer": "A"}}})


def test_document_truth_flattens_subsets_like_upstream():
    # equal ids in two subsets: the later one wins, as in the document's correct_result_load
    truth = judging.document_truth({"NBA": {"0": {"answer": "A"}}, "MV": {"0": {"answer": "B"}}})
    assert truth == {"0": "B"}


def test_corrected_reading_refuses_answers_outside_the_sample():
    with pytest.raises(ZooreproError, match="not in the sample"):
        judging.corrected_accuracy(_eval({("NBA", "9"): " A."}), ANSWERS)


def test_steps_write_rows(tmp_path):
    gpu = _eval({("MSVD", "1"): " A. x", ("MSVD", "2"): " A. x", ("MOT", "3"): " F. x", ("TVQA", "4"): " C. x"})
    npu = _eval({("MSVD", "1"): "A. x", ("MSVD", "2"): "B", ("MOT", "3"): "F", ("TVQA", "4"): "C"}, as_string=True)
    paths = {}
    for name, data in (("gpu", gpu), ("npu", npu), ("answer", ANSWERS)):
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(data))
    rows = {m.metric: m.value for m in score_records(paths["gpu"], paths["answer"], "7B", "float32")}
    assert rows["7B accuracy"] == 75.0 and rows["7B accuracy MSVD"] == 50.0 and rows["7B accuracy MOT"] == 100.0
    assert 0 < rows["7B Video-Bench final score"] <= 100
    rows = {m.metric: m.value for m in precision_records(paths["npu"], paths["gpu"], paths["answer"], "7B", "float16")}
    assert rows["7B |NPU-GPU| accuracy gap"] == 25.0
    assert rows["7B NPU-GPU same answer"] == 75.0
    # parsed in both: 1, 2 ('B'[0] = 'B') and 4; the GPU got 2 wrong
    assert rows["7B GPU accuracy (document reading)"] == pytest.approx(200 / 3)


def test_flops_per_token_matches_a_hand_count_of_the_real_7b():
    """The % of peak row's FLOPs count on the real 7B's sizes (meta device, no weights): 32 layers
    x (4 attention projections 4096x4096 + 3 MLP 4096x11008) + lm_head 32064x4096, x 2."""
    import torch
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaNextVideoConfig,
        LlavaNextVideoForConditionalGeneration,
    )

    from zoorepro.llava_video.compute import flops_per_token, gpu_peak

    config = LlavaNextVideoConfig(
        text_config=LlamaConfig(vocab_size=32064, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                                num_attention_heads=32),
        vision_config=CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                                       num_attention_heads=16, image_size=336, patch_size=14, projection_dim=768))
    with torch.device("meta"):
        model = LlavaNextVideoForConditionalGeneration(config)
    hand = 2 * (32 * (4 * 4096 * 4096 + 3 * 4096 * 11008) + 32064 * 4096)
    assert flops_per_token(model) == hand  # 13.21 GFLOP a token
    assert gpu_peak("NVIDIA H200", "bfloat16")[0] == 989.5e12 and gpu_peak("NVIDIA GeForce RTX 3090", "float32") is None
