"""ClipBERT's "% of peak" on cuda (zoorepro/clipbert/compute.py, run_video_qa.peak_rows): FLOPs
counted by torch over a real forward, an item's share, the peak from the data table with its source.
The arithmetic is checked here on the cpu; the rows appear only on a listed GPU."""
from __future__ import annotations

import pytest
import torch
from test_clipbert_model import TINY

from zoorepro.clipbert.compute import forward_flops, percent_of_peak
from zoorepro.clipbert.model import ClipBertConfig, build_model, num_labels_for
from zoorepro.clipbert.run_video_qa import peak_rows


def test_forward_flops_counts_a_matmul_exactly():
    layer = torch.nn.Linear(8, 4, bias=False)
    assert forward_flops(lambda: layer(torch.ones(3, 8))) == 2 * 3 * 8 * 4


def test_clipbert_flops_grow_with_batch_and_clips():
    model = build_model(ClipBertConfig.from_model_config({**TINY}, num_labels_for(10))).eval()

    def flops(batch: int, clips: int) -> float:
        ids, mask = torch.ones(batch, 6, dtype=torch.long), torch.ones(batch, 6, dtype=torch.long)
        video = torch.zeros(batch, clips, 3, 64, 64)
        return forward_flops(lambda: model.clip_logits(ids, mask, video, clips))

    one = flops(1, 2)
    assert one > 0 and flops(2, 2) == pytest.approx(2 * one) and flops(1, 4) == pytest.approx(2 * one)


def test_percent_of_peak_reads_the_data_table():
    percent, peak, source = percent_of_peak(1000.0, 1e9, "NVIDIA H200", "bfloat16")
    assert peak == 989.5e12 and "H200" in source and percent == pytest.approx(100 * 1e12 / 989.5e12)
    assert percent_of_peak(1.0, 1e9, "NVIDIA H200", "float32")[1] == 67e12
    assert percent_of_peak(1.0, 1e9, "Some GPU", "bfloat16") is None


def test_peak_rows_only_on_a_listed_gpu_with_counted_flops():
    report = {"timer": {"flops_per_item": 2e9}}
    common = {"precision": "bfloat16 autocast (torch.amp)", "batch_size": None, "raw": ("r.json",)}
    (row,) = peak_rows("finetune", 100.0, report, "NVIDIA H200", "bfloat16", common)
    assert row.metric == "finetune % of peak" and row.unit == "percent"
    assert row.value == pytest.approx(100 * 100 * 2e9 / 989.5e12) and "x3 for the backward" in row.note
    assert peak_rows("inference", 100.0, report, "Unlisted GPU", "bfloat16", common) == []
    assert peak_rows("inference", 100.0, {"timer": {}}, "NVIDIA H200", "bfloat16", common) == []
    assert peak_rows("inference", 100.0, report, None, "float32", common) == []
