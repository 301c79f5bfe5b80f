"""IxrtBackend against the stand-in ixrtexec / optimizer.py / ByteMLPerf tree, and the ByteMLPerf
formulas in zoorepro.backends.ixrt.bytemlperf and ixrtexec's output parser on hand-computed inputs."""
from __future__ import annotations

import hashlib
import json
import math
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from standins_fixture import STANDINS, activate_ixrt

from zoorepro.backends import get_backend
from zoorepro.backends.ixrt import IxrtBackend
from zoorepro.backends.ixrt.bytemlperf import (
    load_workload,
    numeric_diff,
    perf_stats,
    read_report,
)
from zoorepro.backends.ixrt.ixrtexec import parse_ixrtexec, shapes_arg, sidecar_path
from zoorepro.errors import ConfigError, ToolchainMissing, ZooreproError

ROOT = Path(__file__).resolve().parent.parent
WORKLOAD = ROOT / "workloads" / "videobert-onnx-fp32.json"
MODEL_ZOO = ROOT / "workloads" / "model_zoo" / "videobert-onnx-fp32.json"
TASK = "videobert-onnx-fp32"
N_IMAGES = 20
WRONG = {1, 6, 7, 13, 19}  # images whose label is not the class the tiny model predicts
IXRTEXEC_OUTPUT = "Load plugin: ixrt_plugin\nfps: 603.0 with batchsize 16\nThroughput: 37.6875 qps\n"
# The document's model inputs, as its caller passes them: `image` carries the batch, `text` does not.
INPUT_SHAPES = {"image": ["bs", 3, 224, 224], "text": [100, 77]}


def ixrt(**settings: object) -> IxrtBackend:
    """The mrv100 target built as the pipeline builds it (the factory), with these settings."""
    return get_backend("mrv100", {"targets": {"mrv100": {"backend": "ixrt", "hardware": "mrv100", **settings}}})


def videobert_like_onnx(path: Path) -> Path:
    """VideoBERT's interface (image [B,3,224,224] float, text [100,77] int64 -> logits_per_image
    [B,100], logits_per_text [100,B]): the per-channel image mean picks class 0, 1 or 2, and a
    tiny text term keeps `text` a real input."""
    weight = np.zeros((3, 100), np.float32)
    weight[[0, 1, 2], [0, 1, 2]] = 1.0
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["image"], ["pooled"], axes=[2, 3], keepdims=0),
            helper.make_node("MatMul", ["pooled", "w"], ["scores"]),
            helper.make_node("Cast", ["text"], ["text_f"], to=TensorProto.FLOAT),
            helper.make_node("ReduceMean", ["text_f"], ["text_mean"], axes=[1], keepdims=0),
            helper.make_node("Mul", ["text_mean", "scale"], ["text_term"]),
            helper.make_node("Add", ["scores", "text_term"], ["logits_per_image"]),
            helper.make_node("Transpose", ["logits_per_image"], ["logits_per_text"], perm=[1, 0]),
        ],
        "videobert_like",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["B", 3, 224, 224]),
         helper.make_tensor_value_info("text", TensorProto.INT64, [100, 77])],
        [helper.make_tensor_value_info("logits_per_image", TensorProto.FLOAT, ["B", 100]),
         helper.make_tensor_value_info("logits_per_text", TensorProto.FLOAT, [100, "B"])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(np.array(1e-4, np.float32), "scale")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def tiny_cifar(folder: Path) -> Path:
    """cifar-100-python in the release's format: `test` and `meta` pickles (planar RGB rows,
    fine_labels) plus ByteMLPerf's text.npy. Image i is pure channel i % 3."""
    folder.mkdir(parents=True)
    planes = np.zeros((N_IMAGES, 3, 32, 32), np.uint8)
    planes[np.arange(N_IMAGES), np.arange(N_IMAGES) % 3] = 255
    labels = [i % 3 if i not in WRONG else 50 for i in range(N_IMAGES)]
    test = {"data": planes.reshape(N_IMAGES, 3072), "fine_labels": labels,
            "filenames": [f"img_{i}.png" for i in range(N_IMAGES)]}
    (folder / "test").write_bytes(pickle.dumps(test, protocol=2))
    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": [f"class{i}" for i in range(100)]}, protocol=2))
    np.save(folder / "text.npy", np.random.default_rng(0).integers(0, 50, (100, 77), dtype=np.int64))
    return folder


def expected_top1(n_images: int) -> float:
    return round(sum(i not in WRONG for i in range(n_images)) / n_images, 5)


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in ByteMLPerf checkout with the tiny model and data, all stand-ins active."""
    monkeypatch.syspath_prepend(str(STANDINS / "python"))
    from standin_bytemlperf import make_tree

    onnx_path = videobert_like_onnx(tmp_path / "video-bert.onnx")
    root = make_tree(tmp_path / "ByteMLPerf", onnx_path, tiny_cifar(tmp_path / "cifar-100-python"))
    activate_ixrt(monkeypatch, root)
    monkeypatch.setenv("COREX_HOME", str(tmp_path / "corex"))
    return root


# -- check() / settings --------------------------------------------------------------------------


def test_check_names_each_missing_piece_and_the_portable_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no ixrtexec, no python3
    for name in ("IXRT_OPTIMIZER", "BYTEMLPERF_ROOT", "IXRT_PYTHON"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ToolchainMissing) as err:
        ixrt().check()
    message = str(err.value)
    for needle in ("`ixrtexec` is not on PATH", "IXUCA SDK 4.2.0", "tensorrt",
                   "git clone https://gitee.com/deep-spark/iluvatar-corex-ixrt.git", "IXRT_OPTIMIZER",
                   "toolbox/ByteMLPerf", "BYTEMLPERF_ROOT", "`cpu`", "snakemake results[/mini]/<model>_cpu.csv",
                   "onnxruntime-gpu"):
        assert needle in message


def test_check_refuses_upstream_bytemlperf_without_the_iluvatar_backend(tree: Path) -> None:
    ixrt().check()  # the stand-in tree passes
    (tree / "general_perf" / "backends" / "ILUVATAR" / "optimizer" / "optimizer.py").unlink()
    (tree / "general_perf" / "backends" / "ILUVATAR" / "optimizer").rmdir()
    (tree / "general_perf" / "backends" / "ILUVATAR").rmdir()
    with pytest.raises(ToolchainMissing, match="no general_perf/backends/ILUVATAR"):
        ixrt().check()


@pytest.mark.parametrize("settings", [
    {"device": -1}, {"device": True}, {"input_shapes": {"image": ["bs", "bs", 3]}},
    {"input_shapes": {"image": [0, 3]}}, {"input_shapes": []}, {"optimizer": 3},
])
def test_bad_settings_name_their_key(settings: dict) -> None:
    with pytest.raises(ConfigError, match=r"targets\.mrv100\."):
        ixrt(**settings)


def test_shapes_arg_is_the_documents_syntax() -> None:
    assert shapes_arg(INPUT_SHAPES, 16) == "image:16x3x224x224,text:100x77"


# -- compile / benchmark / versions through the stand-ins ----------------------------------------


def test_compile_then_benchmark(tree: Path, tmp_path: Path) -> None:
    (tmp_path / "corex").mkdir()
    (tmp_path / "corex" / "version.txt").write_text("4.2.0\n")
    backend = ixrt(device=1)
    backend.check()
    onnx_path = tree / "general_perf" / "model_zoo" / "popular" / "open_videobert" / "video-bert.onnx"
    engine = backend.compile(onnx_path, tmp_path / "engines", 4, input_shapes=INPUT_SHAPES)

    assert engine == tmp_path / "engines" / "model_bs4.engine"
    assert engine.read_bytes().startswith(b"ZOOREPRO-STANDIN-ENGINE\n")
    assert (tmp_path / "engines" / "video-bert_end.onnx").is_file()
    assert sorted(p.name for p in (tmp_path / "engines").iterdir()) == [
        "model_bs4.engine", "model_bs4.engine.inputs.json", "video-bert_end.onnx"]
    assert not (onnx_path.parent / "video-bert_end.onnx").exists()  # the optimizer ran on a copy

    bench = backend.benchmark(engine, 4, loop=6, warmup=2)
    qps = bench.extra["qps_batches_per_s"]
    assert (bench.batch_size, bench.loop, bench.warmup, bench.times_ms) == (4, 6, 2, [])
    assert bench.mean_ms == pytest.approx(1000 / qps)
    assert bench.throughput == pytest.approx(4 * qps)
    assert bench.throughput == pytest.approx(1000 * 4 / bench.mean_ms)
    # ixrtexec 4.2.0 multiplies by dim 0 of the last input: VideoBERT's text (100), not the batch.
    assert bench.extra["tool_batchsize"] == 100
    assert bench.extra["tool_fps"] == pytest.approx(100 * qps)
    assert math.isnan(bench.p99_ms) and math.isnan(bench.median_ms)

    versions = backend.versions()
    assert versions["standin"] is True and "ZOOREPRO STAND-IN" in versions["ixrtexec"]
    assert (versions["backend"], versions["device"], versions["ixuca_sdk"]) == ("ixrt", 1, "4.2.0")


def test_engine_serves_only_its_batch_size(tree: Path, tmp_path: Path) -> None:
    backend = ixrt()
    onnx_path = tree / "general_perf" / "model_zoo" / "popular" / "open_videobert" / "video-bert.onnx"
    engine = backend.compile(onnx_path, tmp_path / "engines", 2, input_shapes=INPUT_SHAPES)
    with pytest.raises(ZooreproError, match="outside the engine's profile"):
        backend.benchmark(engine, 3, loop=2, warmup=0)


def test_compile_refuses_input_names_the_model_lacks(tree: Path, tmp_path: Path) -> None:
    backend = ixrt()
    onnx_path = tree / "general_perf" / "model_zoo" / "popular" / "open_videobert" / "video-bert.onnx"
    with pytest.raises(ZooreproError, match="Cannot find input tensor with name 'txt'"):
        backend.compile(onnx_path, tmp_path / "engines", 2,
                        input_shapes={"image": ["bs", 3, 224, 224], "txt": [100, 77]})
    assert not (tmp_path / "engines" / "model_bs2.engine").exists()
    assert not sidecar_path(tmp_path / "engines" / "model_bs2.engine").exists()


def test_infer_points_to_bytemlperf(tmp_path: Path) -> None:
    with pytest.raises(ZooreproError, match=r"accuracy\(\)"):
        ixrt().infer(tmp_path / "e.engine", [], tmp_path / "out", 4)


# -- accuracy through the stand-in perf_engine ---------------------------------------------------


def test_accuracy_runs_the_documented_workload(tree: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("STANDIN_PERF_ITERATIONS", "3")  # the stand-in's perf loop kept short
    harness = ixrt().harness("bytemlperf")
    result = harness.accuracy(TASK, WORKLOAD, tmp_path / "report")

    assert result["top1"] == expected_top1(N_IMAGES) == 0.75
    assert result["data_percent"] == 100
    assert result["diff"] == {}  # no CPU reference: "Fetch CPU Data Failed"
    assert [p["BS"] for p in result["performance"]] == [4, 8, 16, 24]
    for entry in result["performance"]:
        assert entry["QPS"] > 0 and 0 < entry["AVG Latency"] <= entry["P99 Latency"]  # P99 of 3 = max
    copied = read_report(tmp_path / "report" / "result-fp16.json")
    assert copied["Model"] == TASK.upper() and copied["Backend"] == "ILUVATAR"
    assert copied["Graph Compile"]["Compile Precision"] == "FP16"
    assert (tree / "general_perf" / "workloads" / f"{TASK}.json").read_bytes() == WORKLOAD.read_bytes()

    other = tmp_path / "other.json"
    other.write_text(json.dumps({**json.loads(WORKLOAD.read_text()), "iterations": 5}))
    with pytest.raises(ZooreproError, match="exists with other content"):
        harness.accuracy(TASK, other, tmp_path / "report2")


def test_accuracy_with_cpu_reference_reports_general_perf_diffs(tree: Path, tmp_path: Path) -> None:
    workload = tmp_path / f"{TASK}.json"
    workload.write_text(json.dumps({**json.loads(WORKLOAD.read_text()), "test_perf": False, "data_percent": 50}))
    batches = int(0.5 * (N_IMAGES // 4))  # 5 batches of 4, half of them (floored)
    cpu_dir = tree / "general_perf" / "reports" / "CPU" / TASK
    cpu_dir.mkdir(parents=True)
    cpu = np.random.default_rng(3).standard_normal((batches, 4, 100)).astype(np.float32)
    np.save(cpu_dir / "open_cifar.npy", cpu)

    result = ixrt().harness("bytemlperf").accuracy(TASK, workload, tmp_path / "report")

    assert result["top1"] == expected_top1(4 * batches) == 0.625
    assert result["data_percent"] == 50 and result["performance"] == []
    vendor = np.load(tree / "general_perf" / "reports" / "ILUVATAR" / TASK / "open_cifar.npy")
    assert vendor.shape == cpu.shape
    assert result["diff"] == numeric_diff(list(cpu), list(vendor))


def perf_engine(tree: Path, workload: dict, *flags: str) -> subprocess.CompletedProcess:
    """The tree's perf_engine.py as the document runs it, with this workload installed."""
    dest = tree / "general_perf" / "workloads" / f"{TASK}.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(workload))
    return subprocess.run([sys.executable, str(tree / "general_perf/core/perf_engine.py"), "--hardware_type",
                           "ILUVATAR", "--task", TASK, *flags], cwd=tree / "general_perf", capture_output=True,
                          text=True, check=False)


@pytest.mark.parametrize("how", ["workload", "flag"])
def test_compile_only_builds_the_engine_and_stops(tree: Path, tmp_path: Path, how: str) -> None:
    """DeepSparkInference 25.03's perf_engine: `--compile_only` or the workload key stop it after
    the compile (optimizer, `_end.engine`, the report folder) with no runtime and no report."""
    workload = {**json.loads(WORKLOAD.read_text()), "compile_only": how == "workload"}
    proc = perf_engine(tree, workload, *(["--compile_only"] if how == "flag" else []))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    zoo = tree / "general_perf" / "model_zoo" / "popular" / "open_videobert"
    assert (zoo / "video-bert_end.onnx").is_file()
    assert (zoo / "video-bert_end.engine").read_bytes().startswith(b"ZOOREPRO-STANDIN-ENGINE\n")
    out_dir = tree / "general_perf" / "reports" / "ILUVATAR" / TASK
    assert out_dir.is_dir() and list(out_dir.iterdir()) == []
    assert "compile_status: success" in proc.stdout and "Accuracy" not in proc.stderr

    if how == "workload":  # the harness passes no flag; it reads only the report
        with pytest.raises(ZooreproError, match="did not write"):
            ixrt().harness("bytemlperf").accuracy(TASK, tree / "general_perf" / "workloads" / f"{TASK}.json",
                                                  tmp_path / "report")


def test_console_has_no_metric_result_line_and_names_what_it_imitates(tree: Path) -> None:
    workload = {**json.loads(WORKLOAD.read_text()), "test_perf": False, "test_numeric": False}
    proc = perf_engine(tree, workload)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    console = proc.stdout + proc.stderr
    assert "metricResult" not in console  # absent from the 25.03 perf_engine; the report holds Top-1
    assert "ZOOREPRO STAND-IN" in console and "DeepSparkInference 25.03" in console
    assert f"INFO:TestAccuracy:Batch size is 4, Accuracy: {expected_top1(N_IMAGES)}" in proc.stderr
    report = read_report(tree / "general_perf" / "reports" / "ILUVATAR" / TASK / "result-fp16.json")
    assert report["Accuracy"] == {"Data Percent": 100, "Top-1": expected_top1(N_IMAGES)}


@pytest.mark.parametrize("compile_only", [False, True])
def test_a_missing_meta_file_fails_the_run_before_the_compile(tree: Path, tmp_path: Path, compile_only: bool) -> None:
    """The open_cifar loader opens `meta` (class names) in its constructor, before the compile."""
    (tmp_path / "cifar-100-python" / "meta").unlink()
    proc = perf_engine(tree, {**json.loads(WORKLOAD.read_text()), "compile_only": compile_only})
    assert proc.returncode == 1
    assert re.search(r"FileNotFoundError: .*No such file or directory: .*cifar-100-python/meta'", proc.stderr)
    zoo = tree / "general_perf" / "model_zoo" / "popular" / "open_videobert"
    assert not (zoo / "video-bert_end.engine").exists()
    assert not (tree / "general_perf" / "reports" / "ILUVATAR" / TASK).exists()
    installed = tree / "general_perf" / "workloads" / f"{TASK}.json"
    with pytest.raises(ZooreproError, match="perf_engine.py failed"):
        ixrt().harness("bytemlperf").accuracy(TASK, installed, tmp_path / "report")


# -- ByteMLPerf formulas -------------------------------------------------------------------------


def test_perf_stats_uses_general_perf_rounding() -> None:
    stats = perf_stats([0.010] * 99 + [0.020], 4)
    assert (stats["AVG Latency"], stats["P99 Latency"], stats["QPS"]) == (10.1, 20.0, int(1000 * 4 / 10.1))
    assert stats["QPS"] == 396
    assert stats["mean_ms"] == pytest.approx(10.1)
    assert stats["samples_per_s"] == pytest.approx(4 / 0.0101)
    assert stats["batches_per_s"] == pytest.approx(1 / 0.0101)


def test_perf_stats_qps_comes_from_the_rounded_average() -> None:
    stats = perf_stats([0.0012987] * 10, 4)
    assert stats["AVG Latency"] == 1.3 and stats["QPS"] == int(4000 / 1.3) == 3076  # truncated, not 3077
    assert stats["samples_per_s"] == pytest.approx(4 / 0.0012987)  # 3079.999..., unrounded


def test_perf_stats_refuses_empty_or_vanishing_latencies() -> None:
    with pytest.raises(ZooreproError):
        perf_stats([], 4)
    with pytest.raises(ZooreproError, match="undefined"):
        perf_stats([1e-6] * 3, 4)


def test_numeric_diff_on_crafted_arrays() -> None:
    cpu = [np.array([2.0, 0.0], np.float32), np.array([-4.0, np.nan], np.float32)]
    other = [np.array([1.0, 0.5], np.float32), np.array([-3.0, 2.0], np.float32)]
    # cpu -> [2, 0, -4, 0] (NaN -> 0); |diff| = [1, .5, 1, 2]; |rel| = [.5, .5, .25, 2] (0 -> 1 below)
    assert numeric_diff(cpu, other) == {
        "Mean Diff": 1.125,
        "Std Diff": round(math.sqrt(0.296875), 5),
        "Max Diff": 2.0,
        "Max Rel-Diff": 2.0,
        "Mean Rel-Diff": 0.8125,
    }
    assert np.isnan(cpu[1][1])  # the caller's arrays are left as they were


def test_numeric_diff_refuses_mismatched_batches() -> None:
    with pytest.raises(ZooreproError, match="shape"):
        numeric_diff([np.zeros((4, 100))], [np.zeros((8, 100))])
    with pytest.raises(ZooreproError, match="as many batches"):
        numeric_diff([np.zeros(3)], [])


def test_parse_ixrtexec_reads_the_two_result_lines() -> None:
    assert parse_ixrtexec(IXRTEXEC_OUTPUT) == (603.0, 16, 37.6875)


@pytest.mark.parametrize("output", [
    "fps: 603.0 with batchsize 16\n",
    "Throughput: 37.6875 qps\n",
    "",
    IXRTEXEC_OUTPUT + "Throughput: 37.6875 qps\n",
    "fps: 603.0 with batchsize 16\nThroughput: nan qps\n",
])
def test_parse_ixrtexec_refuses_missing_or_doubtful_lines(output: str) -> None:
    with pytest.raises(ZooreproError, match="ixrtexec"):
        parse_ixrtexec(output)


# -- shipped workload files ----------------------------------------------------------------------


def test_shipped_workload_is_the_one_the_notes_record() -> None:
    assert json.loads(WORKLOAD.read_text()) == {
        "model": "videobert-onnx-fp32", "test_perf": True, "test_accuracy": True, "test_numeric": True,
        "clients": 3, "iterations": 100, "batch_sizes": [4, 8, 16, 24], "data_percent": 100,
        "compile_only": False,
    }
    assert load_workload(WORKLOAD)["batch_sizes"][0] == 4
    assert json.loads(MODEL_ZOO.read_text()) == {
        "model": "videobert-onnx-fp32",
        "model_path": "general_perf/model_zoo/popular/open_videobert/video-bert.onnx",
        "framework": "Onnx", "framework_version": "1.8.1", "model_format": "onnx", "model_precision": "FP32",
        "inputs": "image,text", "outputs": "output",
        "input_shape": {"image": [1, 3, 224, 224], "text": [100, 77]}, "input_type": "FLOAT32,LONG",
        "dataset_name": "open_cifar", "max_batch_size": 64, "is_quantized": False,
    }


def test_workloads_readme_pins_the_shipped_bytes() -> None:
    readme = (ROOT / "workloads" / "README.md").read_text()
    for path in (WORKLOAD, MODEL_ZOO):
        rel = path.relative_to(ROOT / "workloads").as_posix()
        row = re.search(rf"\| `{re.escape(rel)}` \|[^\n]*`([0-9a-f]{{64}})`", readme)
        assert row and row.group(1) == hashlib.sha256(path.read_bytes()).hexdigest(), rel


@pytest.mark.parametrize("change", [
    {"batch_sizes": []}, {"iterations": True}, {"data_percent": 101}, {"test_perf": "yes"}, {"model": ""},
])
def test_load_workload_refuses_what_perf_engine_would_misread(tmp_path: Path, change: dict) -> None:
    path = tmp_path / "w.json"
    path.write_text(json.dumps({**json.loads(WORKLOAD.read_text()), **change}))
    with pytest.raises(ZooreproError, match=re.escape(next(iter(change)))):
        load_workload(path)


def test_load_workload_names_missing_keys(tmp_path: Path) -> None:
    path = tmp_path / "w.json"
    path.write_text(json.dumps({"model": "x", "iterations": 3}))
    with pytest.raises(ZooreproError, match="lacks test_perf, test_accuracy"):
        load_workload(path)


def test_a_checkout_of_the_optimizer_at_another_commit_than_the_pin_is_refused(tree: Path, tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The document clones iluvatar-corex-ixrt's moving branch; the backend holds it to the pin."""
    import shutil
    import subprocess

    checkout = tmp_path / "iluvatar-corex-ixrt"
    (checkout / "tools" / "optimizer").mkdir(parents=True)
    shutil.copyfile(STANDINS / "python" / "standin_ixrt_optimizer.py", checkout / "tools/optimizer/optimizer.py")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run(["git", "init", "-q"], cwd=checkout, check=True)
    subprocess.run(["git", "add", "-A"], cwd=checkout, check=True)
    subprocess.run([*git, "commit", "-qm", "x"], cwd=checkout, check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=checkout, check=True, capture_output=True,
                          text=True).stdout.strip()
    monkeypatch.setenv("IXRT_OPTIMIZER", str(checkout / "tools/optimizer/optimizer.py"))
    with pytest.raises(ZooreproError, match="not the pinned 6d81ff77"):
        ixrt().check()
    backend = ixrt(pins={"optimizer": head})
    backend.check()
    assert backend.versions()["pins"]["optimizer"] == f"verified {head}"
    assert backend.versions()["pins"]["bytemlperf"].startswith("unverified")


# -- input shapes from the caller, recorded beside the engine -------------------------------------


def test_input_shapes_are_the_callers_not_a_target_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"targets\.mrv100\.input_shapes is not a setting"):
        ixrt(input_shapes=INPUT_SHAPES)
    with pytest.raises(ConfigError, match="pass input_shapes"):
        ixrt().compile(tmp_path / "m.onnx", tmp_path / "engines", 2)


@pytest.mark.parametrize("shapes", [{"image": ["bs", "bs", 3]}, {"image": [0, 3]}, [], {"image": []},
                                    {"image": [True, 3]}])
def test_bad_input_shapes_are_refused_before_any_tool_runs(tmp_path: Path, shapes: object) -> None:
    with pytest.raises(ConfigError, match="input_shapes"):
        ixrt().compile(tmp_path / "m.onnx", tmp_path / "engines", 2, input_shapes=shapes)
    assert not (tmp_path / "engines").exists()


def test_compile_records_the_shapes_benchmark_uses(tree: Path, tmp_path: Path) -> None:
    backend = ixrt()
    onnx_path = tree / "general_perf" / "model_zoo" / "popular" / "open_videobert" / "video-bert.onnx"
    engine = backend.compile(onnx_path, tmp_path / "engines", 2, input_shapes=INPUT_SHAPES)
    record = json.loads(sidecar_path(engine).read_text())
    assert record["input_shapes"] == INPUT_SHAPES and record["batch_size"] == 2
    assert record["shapes"] == "image:2x3x224x224,text:100x77"
    assert record["engine_sha256"] == hashlib.sha256(engine.read_bytes()).hexdigest()

    assert backend.benchmark(engine, 2, loop=2, warmup=0).extra["tool_batchsize"] == 100
    engine.write_bytes(engine.read_bytes() + b"\n")  # another engine under the same name
    with pytest.raises(ZooreproError, match="written for another engine"):
        backend.benchmark(engine, 2, loop=2, warmup=0)
    sidecar_path(engine).unlink()
    with pytest.raises(ZooreproError, match="compile the engine again"):
        backend.benchmark(engine, 2, loop=2, warmup=0)


def test_tool_args_reach_the_engine_build(tree: Path, tmp_path: Path) -> None:
    onnx_path = tree / "general_perf" / "model_zoo" / "popular" / "open_videobert" / "video-bert.onnx"
    with pytest.raises(ZooreproError, match="builds fp16 engines only"):
        ixrt().compile(onnx_path, tmp_path / "engines", 2, input_shapes=INPUT_SHAPES, tool_args=["--precision", "int8"])


# -- what the backend declares, and the bytemlperf harness ----------------------------------------


def test_building_runs_no_tool_and_declares_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("BYTEMLPERF_ROOT", str(tmp_path / "bmp"))
    backend = ixrt()
    assert (backend.name, backend.precision, backend.artifact_suffix, backend.compile_tool) == (
        "ixrt", "fp16", "engine", "ixrtexec")
    assert backend.artifact_name(16) == "model_bs16.engine" and backend.can_infer is False
    assert backend.harnesses == {"bytemlperf"} and backend.harness("other") is None
    harness = backend.harness("bytemlperf")
    assert harness.root == tmp_path / "bmp" and harness.hardware_type == "ILUVATAR" and harness.precision == "fp16"
    assert harness.report_path(TASK) == tmp_path / "bmp" / "general_perf/reports/ILUVATAR" / TASK / "result-fp16.json"


@pytest.mark.parametrize("pins", [{"optimiser": "abc"}, {"bytemlperf": ""}, ["abc"]])
def test_bad_pins_name_their_key(pins: object) -> None:
    with pytest.raises(ConfigError, match=r"targets\.mrv100\.pins"):
        ixrt(pins=pins)


def test_harness_places_model_and_data_where_the_model_zoo_entry_says(tree: Path, tmp_path: Path) -> None:
    harness = ixrt().harness("bytemlperf")
    harness.check()
    zoo = harness.model_zoo(TASK)
    assert zoo["dataset_name"] == "open_cifar"
    model = tree / zoo["model_path"]
    assert harness.install(model, zoo["model_path"]) == model  # already there: left alone
    other = tmp_path / "other.onnx"
    other.write_bytes(b"onnx")
    assert harness.install(other, "general_perf/model_zoo/x/y.onnx").read_bytes() == b"onnx"
    with pytest.raises(ZooreproError, match="not inside"):
        harness.install(other, "../outside.onnx")
    assert harness.outputs_dir(TASK) == tree / "general_perf" / "reports" / "ILUVATAR" / TASK


def test_general_perf_benchmark_loop_times_the_callers_feeds(tmp_path: Path) -> None:
    import onnxruntime as ort

    from zoorepro.backends.ixrt.bytemlperf import WARMUP, benchmark

    calls = []

    class Session:  # counts predicts; the feeds are the caller's, passed through unchanged
        def run(self, outputs, feeds):
            calls.append(feeds)
            return [np.zeros(1)]

    feeds = {"image": np.zeros((2, 3, 224, 224), np.float32), "text": np.zeros((100, 77), np.int64)}
    times = benchmark(Session(), feeds, 5)
    assert len(times) == 5 and all(t >= 0 for t in times) and len(calls) == WARMUP + 5
    assert all(c.keys() == feeds.keys() and c["image"] is feeds["image"] for c in calls)
    sess = ort.InferenceSession(str(videobert_like_onnx(tmp_path / "m.onnx")), providers=["CPUExecutionProvider"])
    assert len(benchmark(sess, feeds, 2)) == 2
