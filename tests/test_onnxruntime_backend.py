import numpy as np
import onnxruntime as ort
import pytest
from conftest import tiny_onnx, write_samples

from zoorepro.backends import get_backend
from zoorepro.errors import ToolchainMissing, ZooreproError


def test_compile_infer_benchmark_in_ais_bench_layout(tmp_path, params):
    backend = get_backend("cpu", params)
    backend.check()
    model = backend.compile(tiny_onnx(tmp_path / "m.onnx", batch=4), tmp_path / "cpu", 4)
    dirs = write_samples(tmp_path / "in", 10)
    result = backend.infer(model, dirs, tmp_path / "cpu" / "outputs", 4)
    assert result.n_samples == 10
    names = sorted(p.name for p in (tmp_path / "cpu" / "outputs").iterdir())
    assert names == sorted(f"{i}_{k}.npy" for i in range(10) for k in (0, 1))  # padding rows dropped
    ref = ort.InferenceSession(str(tiny_onnx(tmp_path / "dyn.onnx", batch="B")))
    for i in (0, 9):
        x, m = np.load(dirs[0] / f"{i}.npy"), np.load(dirs[1] / f"{i}.npy")
        want = ref.run(None, {"x": x, "m": m})
        np.testing.assert_allclose(np.load(tmp_path / "cpu" / "outputs" / f"{i}_0.npy"), want[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(np.load(tmp_path / "cpu" / "outputs" / f"{i}_1.npy"), want[1], rtol=1e-5, atol=1e-6)
    bench = backend.benchmark(model, 4, loop=5, warmup=1)
    assert len(bench.times_ms) == 5 and bench.mean_ms > 0
    assert bench.throughput == pytest.approx(1000 * 4 / bench.mean_ms)
    assert bench.e2e_throughput and bench.p99_ms >= bench.median_ms
    assert backend.versions()["provider"] == "CPUExecutionProvider"


def test_compile_refuses_a_model_of_another_batch(tmp_path, params):
    with pytest.raises(ZooreproError, match="batch 2, expected 4"):
        get_backend("cpu", params).compile(tiny_onnx(tmp_path / "m.onnx", batch=2), tmp_path / "cpu", 4)


@pytest.mark.skipif("CUDAExecutionProvider" in ort.get_available_providers(), reason="CUDA present")
def test_cuda_target_without_cuda_says_what_to_do(params):
    with pytest.raises(ToolchainMissing) as err:
        get_backend("cuda", params).check()
    msg = str(err.value)
    assert "onnxruntime-gpu" in msg and "`cpu`" in msg


def test_ascend_target_without_cann_fails_with_one_clear_message(params, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolchainMissing) as err:
        get_backend("310P3", params).check()
    msg = str(err.value)
    assert "atc" in msg and "set_env.sh" in msg and "cpu" in msg


def test_compile_step_refuses_an_onnx_whose_input_shapes_differ_from_the_config(tmp_path):
    """The compile step checks the ONNX against the shapes params.yaml implies before compiling,
    and leaves no model file behind."""
    from conftest import ROOT, run

    onnx_path = tiny_onnx(tmp_path / "m.onnx", batch=1)
    out = tmp_path / "cpu" / "model_bs1.onnx"
    proc = run(["python", "-m", "zoorepro.steps.compile", "--target", "cpu", "--onnx", str(onnx_path),
                "--batch-size", "1", "--input-shape", "x:1,3,8", "m:1,4", "--check-shapes", "--out", str(out),
                "--versions", str(tmp_path / "v.json")], cwd=ROOT, check=False)
    assert proc.returncode == 2
    assert "m" in proc.stderr and "[1, 4]" in proc.stderr and "[1, 3]" in proc.stderr
    assert not out.exists() and not (tmp_path / "v.json").exists()
    ok = run(["python", "-m", "zoorepro.steps.compile", "--target", "cpu", "--onnx", str(onnx_path),
              "--batch-size", "1", "--input-shape", "x:1,3,8", "m:1,3", "--check-shapes", "--out", str(out),
              "--versions", str(tmp_path / "v.json")], cwd=ROOT)
    assert out.exists() and "onnxruntime" in (tmp_path / "v.json").read_text(), ok.stdout


def test_compile_checks_the_callers_input_shapes_and_takes_no_tool_args(tmp_path, params):
    from zoorepro.errors import ConfigError, ShapeMismatchError

    backend = get_backend("cpu", params)
    onnx_path = tiny_onnx(tmp_path / "m.onnx", batch=4)
    model = backend.compile(onnx_path, tmp_path / "cpu", 4, input_shapes={"x": ["bs", 3, 8], "m": ["bs", 3]})
    assert model == tmp_path / "cpu" / backend.artifact_name(4) == tmp_path / "cpu" / "model_bs4.onnx"
    with pytest.raises(ShapeMismatchError, match="differ"):
        backend.compile(onnx_path, tmp_path / "cpu", 4, input_shapes={"x": ["bs", 3, 9], "m": ["bs", 3]})
    with pytest.raises(ConfigError, match="input_shapes"):
        backend.compile(onnx_path, tmp_path / "cpu", 4, input_shapes={"x": "bs,3,8"})
    with pytest.raises(ZooreproError, match="tool_args"):
        backend.compile(onnx_path, tmp_path / "cpu", 4, tool_args=["--optypelist_for_implmode=Gelu"])


def test_cpu_target_declares_itself(params):
    backend = get_backend("cpu", params)
    assert (backend.name, backend.precision, backend.artifact_suffix, backend.compile_tool) == (
        "onnxruntime", "fp32", "onnx", None)
    assert backend.can_infer and backend.harnesses == frozenset() and backend.harness("bytemlperf") is None
