"""FLOPs counted from an ONNX graph (zoorepro/flops.py) against a hand count: one transformer layer
exported by torch, a Gemm and a Conv written by hand; and the peaks data (zoorepro/peaks.py)."""
from __future__ import annotations

import pytest
import torch

from zoorepro import flops, peaks


class Layer(torch.nn.Module):
    """One post-norm transformer encoder layer, attention written out (what BERT-style exports hold)."""

    def __init__(self, d: int, heads: int, ff: int):
        super().__init__()
        self.heads, self.d = heads, d
        self.q, self.k, self.v, self.o = (torch.nn.Linear(d, d) for _ in range(4))
        self.up, self.down = torch.nn.Linear(d, ff), torch.nn.Linear(ff, d)
        self.n1, self.n2 = torch.nn.LayerNorm(d), torch.nn.LayerNorm(d)

    def forward(self, x):
        b, n, _ = x.shape
        split = lambda t: t.view(b, n, self.heads, self.d // self.heads).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        att = torch.softmax(q @ k.transpose(-1, -2) / (self.d // self.heads) ** 0.5, dim=-1)
        ctx = (att @ v).transpose(1, 2).reshape(b, n, self.d)
        x = self.n1(x + self.o(ctx))
        return self.n2(x + self.down(torch.nn.functional.gelu(self.up(x))))


def test_one_transformer_layer_matches_the_hand_count(tmp_path):
    d, heads, ff = 64, 4, 256
    path = tmp_path / "layer.onnx"
    torch.onnx.export(Layer(d, heads, ff).eval(), (torch.randn(1, 8, d),), str(path), input_names=["x"],
                      dynamic_axes={"x": {0: "batch", 1: "tokens"}}, opset_version=17, dynamo=False)
    for batch, n in ((1, 8), (3, 32)):
        # Q, K, V and output projections, QK^T and attention x V, the two feed-forward matmuls
        hand = batch * (4 * 2 * n * d * d + 2 * 2 * n * n * d + 2 * 2 * n * d * ff)
        counted = flops.count(path, {"x": (batch, n, d)})
        assert counted.uncounted == []
        assert counted.total == hand
        assert set(counted.by_op) == {"MatMul"}


def test_gemm_and_conv_are_counted_from_their_attributes(tmp_path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    import numpy as np

    w = numpy_helper.from_array(np.zeros((16, 3, 3, 3), np.float32), "w")
    fc = numpy_helper.from_array(np.zeros((10, 16 * 8 * 8), np.float32), "fc")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2]),
         helper.make_node("Flatten", ["c"], ["f"]),
         helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1)],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 10])], [w, fc])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, tmp_path / "g.onnx")
    counted = flops.count(tmp_path / "g.onnx", {"x": (2, 3, 16, 16)})
    assert counted.by_op["Conv"] == 2 * (2 * 16 * 8 * 8) * (3 * 3 * 3)
    assert counted.by_op["Gemm"] == 2 * (2 * 10) * (16 * 8 * 8)
    with pytest.raises(ValueError, match="not inputs of the graph: z"):
        flops.count(tmp_path / "g.onnx", {"z": (1,)})


def test_peaks_are_data_with_a_source_and_the_cpu_is_measured():
    p310 = peaks.chip_peak("310", "fp16")
    assert p310.flops == 8e12 and "HUAWEI CONNECT 2018" in p310.source
    assert peaks.chip_peak("310P3", "fp16").flops == 70e12
    assert peaks.chip_peak("310", "fp32") is None  # not listed: no % of peak, never a guess
    unstated = peaks.chip_peak("mrv100", "unspecified")
    assert unstated.precision == "fp16" and "precision not stated" in unstated.source
    assert peaks.chip_peak("no-such-chip", "fp16") is None
    assert peaks.gpu_peak("NVIDIA H200", "bfloat16")[0] == 989.5e12
    assert peaks.gpu_peak("NVIDIA H200 NVL", "bfloat16")[0] == 835.5e12  # the longest match wins
    assert peaks.gpu_peak("Tesla V100-SXM2-32GB", "float16")[0] == 125e12
    assert peaks.gpu_peak("NVIDIA L4", "float32")[0] == 30.3e12
    assert peaks.gpu_peak("NVIDIA L40S", "float32") is None  # not the L4
    assert peaks.gpu_peak("Iluvatar MR-V100", "float16") is None  # another vendor's, not NVIDIA's V100
    cpu = peaks.measure_cpu(seconds=0.2, size=256)
    assert cpu.flops > 1e8 and cpu.source.startswith("measured on this host")
    assert cpu.precision == "fp32" and "256x256 float32 matmuls" in cpu.source


def test_the_cpu_peak_is_measured_at_the_precision_a_target_runs_in():
    """A torch runner computing in bf16 (LLaVA's shape scale) is held against the bf16 matmul rate."""
    from zoorepro import peaks

    bf16 = peaks.measure_cpu(seconds=0.1, size=128, precision="bf16")
    assert bf16.precision == "bf16" and "128x128 bfloat16 matmuls" in bf16.source
    assert peaks.CPU_SIZES == {"fp32": 2048, "bf16": 4096, "fp16": 4096}
    with pytest.raises(ValueError, match="int8"):
        peaks.measure_cpu(seconds=0.1, size=64, precision="int8")


def test_the_perf_step_sets_throughput_against_the_targets_peak(tmp_path):
    """`throughput % of peak` = samples/s x FLOPs a sample of the compiled-from graph / peak."""
    import json
    from types import SimpleNamespace

    from conftest import tiny_onnx

    from zoorepro.steps.perf import peak_rows

    graph = tiny_onnx(tmp_path / "g.onnx", batch=2)  # MatMul [2,8] x [8,5]: 2 x 2 x 8 x 5 FLOPs a run
    peak_file = tmp_path / "peak.json"
    peak_file.write_text(json.dumps({"chip": "cpu", "precision": "fp32", "flops": 1e6, "source": "measured here"}))
    bench = SimpleNamespace(batch_size=2, throughput=1000.0)
    [row] = peak_rows(bench, "fp32", "raw.json", graph, peak_file)
    assert row.metric == "throughput % of peak" and row.unit == "percent" and row.batch_size == 2
    assert row.value == pytest.approx(100 * 1000.0 * (2 * 2 * 8 * 5 / 2) / 1e6)
    assert "measured here" in row.note and "MatMul" in row.note
    peak_file.write_text("null")  # a target without a known peak: no row
    assert peak_rows(bench, "fp32", "raw.json", graph, peak_file) == []
