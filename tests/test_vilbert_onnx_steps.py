"""The ViLBERT ONNX steps between export and compile: onnxsim with the document's shapes, and the
document's fix_onnx rewrites (fp16-safe Mul constants, Gather(-1) -> Slice + Squeeze).

The models are small torch modules exported the way export_onnx.py exports ViLBERT (TorchScript
exporter, dynamic batch/box/sequence axes), built around the two patterns fix_onnx targets as torch
emits them: allennlp's `values + (1 - mask) * finfo(float32).min` and `stacked[..., -1]`.
"""
from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from zoorepro.steps import simplify as simplify_step
from zoorepro.errors import ShapeMismatchError, ZooreproError
from zoorepro.steps.simplify import check_input_shapes, parse_input_shapes, simplify
from zoorepro.vilbert.fix_onnx import FP16_MAX, SLICE_END, fix_file, fix_gather, fix_model, fix_mul

ROOT = Path(__file__).resolve().parents[1]
F32_MIN = float(torch.finfo(torch.float32).min)

# The document's onnxsim command, bs1.
DOC_SHAPE_ARGS = ["box_features:1,100,1024", "box_coordinates:1,100,4", "box_mask:1,100",
                  "token_ids:1,32", "mask:1,32", "type_ids:1,32"]
DOC_SHAPES = {"box_features": [1, 100, 1024], "box_coordinates": [1, 100, 4], "box_mask": [1, 100],
              "token_ids": [1, 32], "mask": [1, 32], "type_ids": [1, 32]}
INPUT_NAMES = list(DOC_SHAPES)


def apply_mask(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """allennlp.modules.transformer.util.apply_mask, the source of the -3.4e38 Mul constant."""
    return values + (1.0 - mask.to(values.dtype)) * torch.finfo(torch.float32).min


class TinyVilbert(torch.nn.Module):
    """ViLBERT's six inputs and two outputs; text-to-box and text-to-text masked attention, the two
    streams stacked on a last axis and the last one taken, as VilbertBackbone does."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = torch.nn.Linear(1024, 8)
        self.coordinates = torch.nn.Linear(4, 8, bias=False)
        self.words = torch.nn.Embedding(30, 8)
        self.types = torch.nn.Embedding(2, 8)
        self.classifier = torch.nn.Linear(8, 10)

    def forward(self, box_features, box_coordinates, box_mask, token_ids, mask, type_ids):
        v = self.features(box_features) + self.coordinates(box_coordinates)
        t = self.words(token_ids) + self.types(type_ids)
        to_boxes = torch.softmax(apply_mask(t @ v.transpose(1, 2), box_mask[:, None, :]), dim=-1) @ v
        to_text = torch.softmax(apply_mask(t @ t.transpose(1, 2), mask[:, None, :]), dim=-1) @ t
        stacked = torch.stack([to_text, to_boxes], dim=-1)
        logits = self.classifier(stacked[..., -1][:, 0])
        return logits, torch.sigmoid(logits)


def doc_inputs(seed: int = 0) -> dict[str, np.ndarray]:
    """Inputs of the document's bs1 shapes; some boxes and tokens masked out, none fully."""
    rng = np.random.default_rng(seed)
    box_mask = np.ones((1, 100), dtype=bool)
    box_mask[:, 60:] = False
    mask = np.ones((1, 32), dtype=bool)
    mask[:, 12:] = False
    return {
        "box_features": rng.standard_normal((1, 100, 1024)).astype(np.float32),
        "box_coordinates": rng.uniform(0, 600, (1, 100, 4)).astype(np.float32),
        "box_mask": box_mask,
        "token_ids": rng.integers(0, 30, (1, 32)).astype(np.int64),
        "mask": mask,
        "type_ids": np.zeros((1, 32), dtype=np.int64),
    }


def export(path: Path, opset: int) -> Path:
    """As export_onnx.py: TorchScript exporter, batch/box/sequence axes dynamic."""
    inputs = {k: torch.from_numpy(v[:, : (43 if v.shape[1] == 100 else 20)]) for k, v in doc_inputs().items()}
    box_axes, seq_axes = {0: "batch_size", 1: "box_num"}, {0: "batch_size", 1: "seq_len"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(TinyVilbert().eval(), tuple(inputs[n] for n in INPUT_NAMES), str(path),
                          input_names=INPUT_NAMES, output_names=["logits", "probs"], opset_version=opset,
                          dynamic_axes={n: box_axes if n.startswith("box") else seq_axes for n in INPUT_NAMES},
                          dynamo=False)
    return path


def run(path: Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    return export(tmp_path_factory.mktemp("export") / "vqa-vilbert.onnx", opset=17)


@pytest.fixture(scope="module")
def simplified(exported, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "vqa-vilbert_bs1_sim.onnx"
    simplify(exported, out, DOC_SHAPES, check_n=1)
    return out


# ----------------------------------------------------------------------------------------- onnxsim

def test_onnxsim_cli_documented_shapes_give_static_inputs(exported, tmp_path):
    out = tmp_path / "vqa-vilbert_bs1_sim.onnx"
    proc = subprocess.run([sys.executable, "-m", "zoorepro.steps.simplify", str(exported), str(out),
                           "--input-shape", *DOC_SHAPE_ARGS], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "Ok!" in proc.stdout
    check_input_shapes(out, DOC_SHAPES)
    feeds = doc_inputs(seed=1)
    for before, after in zip(run(exported, feeds), run(out, feeds)):
        np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-6)


def test_check_input_shapes_refuses_the_dynamic_export(exported):
    with pytest.raises(ShapeMismatchError, match=r"box_features.*\[1, 100, 1024\].*batch_size, box_num, 1024"):
        check_input_shapes(exported, DOC_SHAPES)


@pytest.mark.parametrize("expected, message", [
    ({**DOC_SHAPES, "box_mask": [1, 43]}, r"'box_mask': expected shape \[1, 43\], the model's is \[1, 100\]"),
    ({k: v for k, v in DOC_SHAPES.items() if k != "type_ids"},
     r"inputs the expected shapes do not name: type_ids \[1, 32\]"),
    ({**DOC_SHAPES, "question": [1, 32]}, r"'question'.*no input of that name"),
])
def test_check_input_shapes_refuses_config_mismatch(simplified, expected, message):
    with pytest.raises(ShapeMismatchError, match=message):
        check_input_shapes(simplified, expected)


@pytest.mark.parametrize("spec, message", [
    ("question:1,32", r"'question': expected shape \[1, 32\], but the model has no input of that name"),
    ("box_mask:1,100,1",
     r"'box_mask': expected shape \[1, 100, 1\] \(rank 3\), the model's is \[batch_size, box_num\] \(rank 2\)"),
    ("box_features:1,100,2048",
     r"'box_features'.*\[1, 100, 2048\].*\[batch_size, box_num, 1024\] \(dim 2 is fixed to 1024\)"),
])
def test_onnxsim_refuses_shapes_the_model_cannot_take(exported, tmp_path, spec, message):
    out = tmp_path / "out.onnx"
    shapes = parse_input_shapes([a for a in DOC_SHAPE_ARGS if not a.startswith(spec.split(":")[0] + ":")] + [spec])
    with pytest.raises(ShapeMismatchError, match=message):
        simplify(exported, out, shapes)
    assert not out.exists()


def test_onnxsim_cli_exits_nonzero_on_a_bad_shape(exported, tmp_path, capsys):
    out = tmp_path / "out.onnx"
    assert simplify_step.main([str(exported), str(out), "--input-shape", "box_mask:1,100,1"]) == 2
    assert "box_mask" in capsys.readouterr().err
    assert not out.exists()


def test_onnxsim_failed_check_is_an_error(exported, tmp_path, monkeypatch):
    """onnxsim reporting a failed check (the document's onnxsim exits 1) must stop the step."""
    monkeypatch.setattr(simplify_step, "_onnxsim_simplify", lambda: lambda model, **kw: (model, False))
    out = tmp_path / "out.onnx"
    with pytest.raises(ZooreproError, match="Check failed"):
        simplify(exported, out, DOC_SHAPES)
    assert not out.exists()


def test_onnxsim_result_must_have_the_requested_shapes(exported, tmp_path, monkeypatch):
    """A simplifier that returns the model with its inputs still dynamic is caught afterwards."""
    monkeypatch.setattr(simplify_step, "_onnxsim_simplify", lambda: lambda model, **kw: (model, True))
    with pytest.raises(ShapeMismatchError, match="box_features"):
        simplify(exported, tmp_path / "out.onnx", DOC_SHAPES)


@pytest.mark.parametrize("spec", ["1,100,1024", "box_features:1,x", "box_features:1,0,4", ":1,2"])
def test_parse_input_shapes_refuses_malformed_specs(spec):
    with pytest.raises(ZooreproError):
        parse_input_shapes([spec])


def test_parse_input_shapes_reads_the_document_form():
    assert parse_input_shapes(DOC_SHAPE_ARGS) == DOC_SHAPES


# ----------------------------------------------------------------------------------------- fix_onnx

def mul_constants(model: onnx.ModelProto) -> list[np.ndarray]:
    """Values of every Constant/initializer that a Mul reads."""
    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    values.update({n.output[0]: numpy_helper.to_array(n.attribute[0].t)
                   for n in model.graph.node if n.op_type == "Constant"})
    return [values[i] for n in model.graph.node if n.op_type == "Mul" for i in n.input if i in values]


def gathers_of_minus_one(model: onnx.ModelProto) -> int:
    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    values.update({n.output[0]: numpy_helper.to_array(n.attribute[0].t)
                   for n in model.graph.node if n.op_type == "Constant"})
    return sum(1 for n in model.graph.node
               if n.op_type == "Gather" and n.input[1] in values and values[n.input[1]].tolist() == -1)


@pytest.mark.parametrize("opset", [11, 13, 17])
def test_fix_onnx_on_exported_models(tmp_path, opset):
    """Opset 11 (the document's export) takes Squeeze axes as an attribute, 13+ as an input."""
    src = export(tmp_path / "in.onnx", opset)
    before = onnx.load(str(src))
    assert gathers_of_minus_one(before) == 1
    assert any(v.min() <= F32_MIN for v in mul_constants(before))
    out = tmp_path / "out.onnx"
    counts = fix_file(src, out)
    fixed = onnx.load(str(out))
    onnx.checker.check_model(fixed, full_check=True)
    assert (counts.mul_constants, counts.gathers) == (2, 1)  # two apply_mask calls, one [..., -1]
    assert gathers_of_minus_one(fixed) == 0
    assert [n.op_type for n in fixed.graph.node].count("Slice") == 1
    clipped = mul_constants(fixed)
    assert all(v.min() >= -FP16_MAX and v.max() <= FP16_MAX for v in clipped)
    assert any(v.min() == -FP16_MAX for v in clipped)
    for k in range(2):
        feeds = {n: v[:, : (43 if v.shape[1] == 100 else 20)] for n, v in doc_inputs(seed=k).items()}
        for want, got in zip(run(src, feeds), run(out, feeds)):
            np.testing.assert_array_equal(got, want)


def test_fix_onnx_on_the_simplified_model(simplified, tmp_path):
    out = tmp_path / "vqa-vilbert_bs1_sim_fix.onnx"
    proc = subprocess.run([sys.executable, "-m", "zoorepro.vilbert.fix_onnx", str(simplified), str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("Fix value node: ") == 1  # onnxsim merged the two equal mask constants
    assert proc.stdout.count(" succeed.") == 1
    check_input_shapes(out, DOC_SHAPES)
    fixed = onnx.load(str(out))
    assert gathers_of_minus_one(fixed) == 0
    assert min(v.min() for v in mul_constants(fixed)) == -FP16_MAX
    feeds = doc_inputs(seed=2)
    for want, got in zip(run(simplified, feeds), run(out, feeds)):
        np.testing.assert_array_equal(got, want)


def graph_model(nodes, inputs, outputs, initializers=(), opset=17) -> onnx.ModelProto:
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, list(initializers)),
                              opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    return model


def f32(name: str, shape) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def test_fix_mul_clamps_a_shared_constant_through_a_copy():
    """The mask constant also feeds an Add: the Mul gets a clamped copy, the Add keeps -3.4e38."""
    big = numpy_helper.from_array(np.array([F32_MIN, 2.0], dtype=np.float32), "big")
    model = graph_model(
        [helper.make_node("Mul", ["x", "big"], ["prod"], name="mul"),
         helper.make_node("Add", ["x", "big"], ["sum"], name="add")],
        [f32("x", [2])], [f32("prod", [2]), f32("sum", [2])], [big])
    feeds = {"x": np.array([1.0, 3.0], dtype=np.float32)}
    _, sum_before = run_model(model, feeds)
    assert fix_mul(model) == 1
    onnx.checker.check_model(model)
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    mul, add = model.graph.node
    assert add.input[1] == "big" and inits["big"].tolist() == [F32_MIN, 2.0]
    assert mul.input[1] != "big" and inits[mul.input[1]].tolist() == [-FP16_MAX, 2.0]
    prod, sum_after = run_model(model, feeds)
    np.testing.assert_array_equal(sum_after, sum_before)
    assert prod.tolist() == [-FP16_MAX, 6.0]


def test_fix_mul_counts_a_subgraph_read_as_another_consumer():
    big = numpy_helper.from_array(np.array([F32_MIN, 2.0], dtype=np.float32), "big")
    then_branch = helper.make_graph([helper.make_node("Identity", ["big"], ["t"])], "then", [], [f32("t", [2])])
    else_branch = helper.make_graph([helper.make_node("Identity", ["x"], ["e"])], "else", [], [f32("e", [2])])
    model = graph_model(
        [helper.make_node("Mul", ["x", "big"], ["prod"]),
         helper.make_node("If", ["cond"], ["chosen"], then_branch=then_branch, else_branch=else_branch)],
        [f32("x", [2]), helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [f32("prod", [2]), f32("chosen", [2])], [big])
    assert fix_mul(model) == 1
    onnx.checker.check_model(model)
    chosen = run_model(model, {"x": np.ones(2, np.float32), "cond": np.array(True)})[1]
    assert chosen.tolist() == [F32_MIN, 2.0]
    assert model.graph.node[0].input[1] != "big"


def test_fix_mul_clamps_in_place_when_only_muls_read_it():
    c = helper.make_node("Constant", [], ["c"], name="mask_min", value_float=F32_MIN)
    model = graph_model(
        [c, helper.make_node("Mul", ["x", "c"], ["a"]), helper.make_node("Mul", ["c", "x"], ["b"])],
        [f32("x", [2])], [f32("a", [2]), f32("b", [2])])
    assert fix_mul(model) == 1
    assert len(model.graph.initializer) == 0 and model.graph.node[0].output[0] == "c"
    assert numpy_helper.to_array(model.graph.node[0].attribute[0].t).tolist() == -FP16_MAX


def test_fix_mul_leaves_integer_and_in_range_constants():
    model = graph_model(
        [helper.make_node("Mul", ["n", "k"], ["m"]), helper.make_node("Mul", ["x", "half"], ["y"])],
        [helper.make_tensor_value_info("n", TensorProto.INT64, [1]), f32("x", [1])],
        [helper.make_tensor_value_info("m", TensorProto.INT64, [1]), f32("y", [1])],
        [numpy_helper.from_array(np.array([100000], dtype=np.int64), "k"),
         numpy_helper.from_array(np.array([0.5], dtype=np.float32), "half")])
    assert fix_mul(model) == 0
    assert numpy_helper.to_array(model.graph.initializer[0]).tolist() == [100000]


def run_model(model: onnx.ModelProto, feeds) -> list[np.ndarray]:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)


@pytest.mark.parametrize("opset", [9, 11, 13])
def test_fix_gather_forms_per_opset_and_fresh_names(opset):
    """Opset 9: Slice and Squeeze attributes; 11: Slice inputs, Squeeze attribute; 13: both inputs.
    The Gather is unnamed and the names a naive scheme would pick are taken already."""
    idx = numpy_helper.from_array(np.array(-1, dtype=np.int64), "idx")
    nodes = [helper.make_node("Relu", ["x"], ["Gather_slice"], name="Gather_slice"),
             helper.make_node("Gather", ["Gather_slice", "idx"], ["out_last"], axis=-1),
             helper.make_node("Identity", ["out_last"], ["out"], name="out_last")]
    model = graph_model(nodes, [f32("x", [2, 3, 4])], [f32("out", [2, 3])], [idx], opset=opset)
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4) - 5
    (want,) = run_model(model, {"x": x})
    assert fix_gather(model) == 1
    onnx.checker.check_model(model, full_check=True)
    slice_node, squeeze = model.graph.node[1:3]
    assert (slice_node.op_type, squeeze.op_type) == ("Slice", "Squeeze")
    names = [n.name for n in model.graph.node]
    assert len(set(names)) == len(names) and "Gather_slice" in names
    assert squeeze.output[0] == "out_last" and slice_node.output[0] != "out_last"
    inits = {t.name: numpy_helper.to_array(t).tolist() for t in model.graph.initializer}
    assert "idx" not in inits  # the index constant is read by nothing any more
    slice_args = ({a.name: list(a.ints) for a in slice_node.attribute} if opset < 10
                  else dict(zip(["starts", "ends", "axes"], (inits[n] for n in slice_node.input[1:]))))
    assert slice_args == {"starts": [-1], "ends": [SLICE_END], "axes": [2]}
    squeeze_axes = list(squeeze.attribute[0].ints) if opset < 13 else inits[squeeze.input[1]]
    assert squeeze_axes == [2]
    (got,) = run_model(model, {"x": x})
    np.testing.assert_array_equal(got, want)


def test_fix_gather_keeps_other_gathers_and_a_shared_index():
    """Indices -2 or [-1] are not the document's pattern; an index also read by another node stays."""
    inits = [numpy_helper.from_array(np.array(-1, dtype=np.int64), "m1"),
             numpy_helper.from_array(np.array(-2, dtype=np.int64), "m2"),
             numpy_helper.from_array(np.array([-1], dtype=np.int64), "v1")]
    model = graph_model(
        [helper.make_node("Gather", ["x", "m1"], ["a"], name="g1", axis=1),
         helper.make_node("Gather", ["x", "m2"], ["b"], name="g2", axis=1),
         helper.make_node("Gather", ["x", "v1"], ["c"], name="g3", axis=1),
         helper.make_node("Cast", ["m1"], ["d"], name="cast", to=TensorProto.FLOAT)],
        [f32("x", [2, 3])], [f32("a", [2]), f32("b", [2]), f32("c", [2, 1]), f32("d", [])], inits)
    assert fix_gather(model) == 1
    assert [n.op_type for n in model.graph.node].count("Gather") == 2
    assert "m1" in {t.name for t in model.graph.initializer}
    onnx.checker.check_model(model)


def test_fix_gather_refuses_an_axis_the_slice_end_cannot_reach():
    model = graph_model(
        [helper.make_node("Gather", ["x", "i"], ["y"], name="g", axis=1)],
        [f32("x", [1, SLICE_END + 1])], [f32("y", [1])],
        [numpy_helper.from_array(np.array(-1, dtype=np.int64), "i")])
    with pytest.raises(ZooreproError, match=f"length {SLICE_END + 1}"):
        fix_model(model)


def test_the_simplify_check_is_seeded_and_scaled_to_each_output(tmp_path):
    """A graph whose outputs are large (±100) agrees with itself within float32 rounding, which
    onnxsim's absolute 1e-5 would call a change; a real change is still caught."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    from zoorepro.steps.simplify import check_equivalent

    def model(weight):
        w = numpy_helper.from_array(weight.astype(np.float32), "w")
        graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                                  [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["b", 64])],
                                  [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["b", 8])], [w])
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])

    weight = np.random.default_rng(1).normal(scale=30.0, size=(64, 8))
    shapes = {"x": [4, 64]}
    assert check_equivalent(model(weight), model(weight * (1 + 3e-7)), shapes, 3) is None
    problem = check_equivalent(model(weight), model(weight * 1.001), shapes, 3)
    assert problem and problem.startswith("output y differs by up to")
