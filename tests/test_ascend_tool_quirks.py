"""The four places where the real Ascend tools would break or skew a run (issue 15), each held
against the stand-ins in the era that has it: ais_bench's 2024-02 path checks, per-tensor copy
latencies, ATC's `--version` (tests/test_ascend_backend.py) and the ONNX opset range per CANN
release."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from standins_fixture import STANDINS, activate, ascend_env

from zoorepro.backends import get_backend
from zoorepro.backends.ascend import AscendBackend
from zoorepro.backends.ascend.ais_bench import summary_times
from zoorepro.backends.ascend.cann import (
    check_opset,
    opset_table,
    release_of,
    toolkit_version,
)
from zoorepro.errors import ZooreproError

N_INPUTS, N_OUTPUTS = 6, 2


def backend() -> AscendBackend:
    return get_backend("310P3", {"targets": {"310P3": {"backend": "ascend", "hardware": "310P3",
                                                       "soc_version": "Ascend310P3"}}})


def six_input_onnx(path: Path, batch: int = 2, opset: int = 11) -> Path:
    """ViLBERT's signature in miniature: six inputs of three dtypes, two outputs."""
    names = ["box_features", "box_coordinates", "box_mask", "token_ids", "mask", "type_ids"]
    types = [TensorProto.FLOAT, TensorProto.FLOAT, TensorProto.BOOL, TensorProto.INT64, TensorProto.BOOL,
             TensorProto.INT64]
    nodes = [helper.make_node("Cast", [name], [f"{name}_f"], to=TensorProto.FLOAT) for name in names]
    nodes += [helper.make_node("Concat", [f"{n}_f" for n in names], ["logits"], axis=1),
              helper.make_node("Sigmoid", ["logits"], ["probs"])]
    graph = helper.make_graph(
        nodes, "six",
        [helper.make_tensor_value_info(n, t, [batch, 3]) for n, t in zip(names, types)],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [batch, 18]) for n in ("logits", "probs")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), path)
    return path


def ais_bench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ais_bench", *args], cwd=cwd, capture_output=True, text=True,
                          check=False)


# -- 2. copies are counted per tensor -----------------------------------------------------------

def test_end_to_end_adds_every_copy_of_a_batch_hand_computed() -> None:
    """Six H2D entries (one per input) and two D2H entries (one per output) of one pure-inference
    set: the end-to-end time is the compute mean plus all eight copies, not plus two means."""
    summary = {
        "NPU_compute_time": {"mean": 5.0, "median": 5.0, "percentile(99%)": 6.0, "count": 20},
        "npu_compute_time_list": [5.0] * 20, "throughput": 200.0,
        "H2D_latency": {"min": 0.1, "max": 0.6, "mean": 0.35, "median": 0.35, "percentile(99%)": 0.6, "count": 6},
        "D2H_latency": {"min": 0.2, "max": 0.4, "mean": 0.3, "median": 0.3, "percentile(99%)": 0.4, "count": 2},
    }
    times = summary_times(summary)
    assert times.h2d.total_ms == pytest.approx(2.1) and times.d2h.total_ms == pytest.approx(0.6)
    assert times.e2e_mean_ms() == pytest.approx(5.0 + 6 * 0.35 + 2 * 0.3)  # 7.7, not 5.65
    summary["D2H_latency"] = {"mean": 0.0, "count": 0}
    assert summary_times(summary).e2e_mean_ms() == pytest.approx(7.1)
    summary["H2D_latency"]["count"] = 2.5
    with pytest.raises(ZooreproError, match="not a count"):
        summary_times(summary)


def test_benchmark_of_a_six_input_model_counts_each_tensor_copy(tmp_path: Path, monkeypatch) -> None:
    activate(monkeypatch)
    ascend = backend()
    om = ascend.compile(six_input_onnx(tmp_path / "six.onnx"), tmp_path / "om", 2)
    bench = ascend.benchmark(om, 2, loop=5, warmup=1)
    extra = bench.extra
    assert (extra["h2d_count"], extra["d2h_count"]) == (N_INPUTS, N_OUTPUTS)
    assert extra["h2d_total_ms"] == pytest.approx(extra["h2d_mean_ms"] * N_INPUTS)
    assert bench.e2e_mean_ms == pytest.approx(bench.mean_ms + extra["h2d_total_ms"] + extra["d2h_total_ms"])
    assert bench.e2e_throughput == pytest.approx(2000 / bench.e2e_mean_ms)


# -- 1. ais_bench's path checks (current era) ---------------------------------------------------

@pytest.fixture
def compiled(tmp_path: Path, monkeypatch) -> tuple[Path, list[Path]]:
    """A stand-in OM and six per-sample input folders (three samples), current-era stand-ins."""
    activate(monkeypatch)
    om = backend().compile(six_input_onnx(tmp_path / "six.onnx", batch=1), tmp_path / "om", 1)
    rng = np.random.default_rng(0)
    dirs = []
    for name, dtype in [("bf", np.float32), ("bc", np.float32), ("bm", np.bool_), ("ti", np.int64),
                        ("m", np.bool_), ("tt", np.int64)]:
        folder = tmp_path / "in" / name
        folder.mkdir(parents=True)
        for i in range(3):
            np.save(folder / f"{i}.npy", rng.integers(0, 2, (1, 3)).astype(dtype))
        dirs.append(folder)
    return om, dirs


def test_an_om_written_by_compile_is_a_real_file_nobody_else_may_write(compiled) -> None:
    om, _ = compiled
    assert not om.is_symlink() and om.stat().st_mode & 0o777 == 0o640


def test_current_ais_bench_refuses_an_output_folder_made_with_the_usual_umask(compiled, tmp_path: Path) -> None:
    om, dirs = compiled
    out = tmp_path / "work"
    out.mkdir(mode=0o755)
    out.chmod(0o755)
    proc = ais_bench("-m", str(om), "-i", ",".join(map(str, dirs)), "-o", str(out), "--output_dirname", "o",
                     cwd=out)
    assert proc.returncode == 2
    assert "permission should not be over 0o750(rwxr-x---)" in proc.stdout
    assert "argument --output/-o: output path:" in proc.stderr and "is illegal" in proc.stderr
    out.chmod(0o750)
    proc = ais_bench("-m", str(om), "-i", ",".join(map(str, dirs)), "-o", str(out), "--output_dirname", "o",
                     cwd=out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (out / "o").stat().st_mode & 0o777 == 0o750 and (out / "o_summary.json").stat().st_mode & 0o777 == 0o640


def test_the_2023_ais_bench_takes_that_folder(compiled, tmp_path: Path, monkeypatch) -> None:
    om, dirs = compiled
    monkeypatch.setenv("ZOOREPRO_STANDIN_ERA", "2023")
    out = tmp_path / "work"
    out.mkdir()
    out.chmod(0o755)
    proc = ais_bench("-m", str(om), "-i", ",".join(map(str, dirs)), "-o", str(out), "--output_dirname", "o",
                     cwd=out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (out / "o").stat().st_mode & 0o777 == 0o755


@pytest.mark.parametrize("spoil", ["symlink", "group_writable"])
def test_current_ais_bench_refuses_a_symlinked_or_writable_om(compiled, tmp_path: Path, spoil: str) -> None:
    om, _ = compiled
    if spoil == "symlink":
        model = tmp_path / "link.om"
        model.symlink_to(om)
        needle = "is a soft link"
    else:
        model = om
        om.chmod(0o664)
        needle = "is group writable"
    proc = ais_bench("-m", str(model), "--loop", "1", cwd=tmp_path)
    assert proc.returncode == 2 and needle in proc.stdout and "om path:" in proc.stderr


def test_current_ais_bench_refuses_a_symlinked_input_file(compiled, tmp_path: Path) -> None:
    om, dirs = compiled
    (dirs[0] / "2.npy").rename(tmp_path / "moved.npy")
    (dirs[0] / "2.npy").symlink_to(tmp_path / "moved.npy")
    proc = ais_bench("-m", str(om), "-i", ",".join(map(str, dirs)), cwd=tmp_path)
    assert proc.returncode == 2 and "is a soft link" in proc.stdout


def test_current_ais_bench_refuses_illegal_characters_and_checks_the_dirname_in_its_cwd(compiled, tmp_path) -> None:
    om, dirs = compiled
    odd = tmp_path / "my out"
    odd.mkdir(mode=0o750)
    proc = ais_bench("-m", str(om), "-i", ",".join(map(str, dirs)), "-o", str(odd), cwd=tmp_path)
    assert proc.returncode == 2 and "illegal char" in proc.stdout
    out = tmp_path / "out"
    out.mkdir(mode=0o750)
    (tmp_path / "o").mkdir()
    (tmp_path / "o").chmod(0o755)  # ./o in the working directory, not <output>/o, is what gets checked
    proc = ais_bench("-m", str(om), "-i", ",".join(map(str, dirs)), "-o", str(out), "--output_dirname", "o",
                     cwd=tmp_path)
    assert proc.returncode == 2 and "argument --output_dirname" in proc.stderr


def test_the_backend_hands_ais_bench_what_it_accepts(compiled, tmp_path: Path) -> None:
    """A 0o755 output parent (snakemake's umask), a symlinked and group-writable OM (DVC's symlink
    cache): the backend sets the folder to 0o750 and runs a private real copy of the model."""
    om, dirs = compiled
    parent = tmp_path / "work" / "310P3"
    parent.mkdir(parents=True)
    parent.chmod(0o755)
    link = tmp_path / "model_bs1.om"
    link.symlink_to(om)
    om.chmod(0o666)
    result = backend().infer(link, dirs, parent / "outputs", 1)
    assert result.n_samples == 3 and parent.stat().st_mode & 0o777 == 0o750
    assert sorted(p.name for p in (parent / "outputs").iterdir()) == sorted(
        f"{i}_{k}.npy" for i in range(3) for k in range(N_OUTPUTS))
    assert [p.name for p in parent.iterdir() if p.name.startswith(".ais_bench_model_")] == []
    assert result.summary["H2D_latency"]["count"] == 3 * N_INPUTS  # three batches of one
    assert sorted(result.summary["filesinfo"]) == ["0", "1", "2"]  # per sample
    assert backend().benchmark(link, 1, loop=2, warmup=0).e2e_mean_ms is not None


def test_padding_takes_that_batchs_first_file(tmp_path: Path, monkeypatch) -> None:
    activate(monkeypatch)
    sys.path.insert(0, str(STANDINS / "python"))
    try:
        from ais_bench.__main__ import group_batches
    finally:
        sys.path.remove(str(STANDINS / "python"))
    files = [[Path(f"{i}.npy") for i in range(6)]]
    (last, real), = group_batches(files, 4)[1:]
    assert real == 2 and [p.name for p in last[0]] == ["4.npy", "5.npy", "4.npy", "4.npy"]


# -- 4. ONNX opset per CANN release -------------------------------------------------------------

def test_the_opset_table_is_data_with_a_source_per_release() -> None:
    table = opset_table()
    assert all(entry.source and entry.low <= 11 <= entry.high for entry in table.values())
    assert release_of("8.0.RC2.2") == "8.0.RC2" and release_of("6.0.1") == "6.0.1"
    assert release_of("8.0.rc3.alpha003") == "8.0.RC3" and release_of("7.0.0") == "7.0.0"


def test_an_opset_outside_the_release_fails_before_atc_runs(tmp_path: Path, monkeypatch) -> None:
    activate(monkeypatch)
    model = six_input_onnx(tmp_path / "m17.onnx", opset=17)
    with pytest.raises(ZooreproError) as err:
        backend().compile(model, tmp_path / "om", 2)
    assert "ONNX opset 17 is outside what ATC of CANN 8.0.RC2 accepts (opsets 11-15" in str(err.value)
    assert not (tmp_path / "om").exists()  # ATC never ran
    proc = subprocess.run(["atc", "--framework=5", f"--model={model}", f"--output={tmp_path / 'direct'}",
                           "--soc_version=Ascend310P3"], capture_output=True, text=True, check=False)
    assert proc.returncode != 0 and "E19010" in proc.stdout  # the stand-in ATC refuses it too


def test_an_unknown_or_unrecorded_release_fails_closed(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(ZooreproError, match="release 9.9.0 is not in atc_onnx_opsets.yaml"):
        check_opset(11, "9.9.0.alpha1")
    with pytest.raises(ZooreproError, match="cannot tell which CANN release"):
        check_opset(11, None)
    monkeypatch.setenv("ASCEND_TOOLKIT_HOME", str(tmp_path))
    with pytest.raises(ZooreproError, match="cannot tell which CANN release"):
        backend().compile(six_input_onnx(tmp_path / "m.onnx"), tmp_path / "om", 2)


def test_the_2023_tools_compile_and_run_the_documents_opset(tmp_path: Path, monkeypatch) -> None:
    activate(monkeypatch, "2023")
    ascend = backend()
    om = ascend.compile(six_input_onnx(tmp_path / "six.onnx"), tmp_path / "om", 2)
    assert ascend.versions()["cann"] == "6.0.1"
    assert ascend.benchmark(om, 2, loop=2, warmup=1).extra["h2d_count"] == N_INPUTS
    with pytest.raises(ZooreproError, match="opsets 9-13"):
        ascend.compile(six_input_onnx(tmp_path / "m15.onnx", opset=15), tmp_path / "om", 2)


def test_vilbert_exports_at_the_documents_opset_which_both_eras_accept() -> None:
    from zoorepro.config import load_params

    opset = load_params()["vilbert"]["opset"]
    assert opset == 11
    for era in ("current", "2023"):
        check_opset(opset, toolkit_version(Path(ascend_env(era)["ASCEND_TOOLKIT_HOME"])))


# -- ATC's precision ------------------------------------------------------------------------------

@pytest.mark.parametrize(("extra", "precision"), [
    ((), "float constants rounded to fp16, activations fp32"),  # ATC's default force_fp16
    (("--precision_mode=force_fp32",), "fp32"),
])
def test_the_standin_atc_models_the_precision_mode(tmp_path: Path, monkeypatch, extra, precision) -> None:
    activate(monkeypatch)
    monkeypatch.syspath_prepend(str(STANDINS / "python"))
    from standin_om import read_om

    ascend = get_backend("310P3", {"targets": {"310P3": {"backend": "ascend", "hardware": "310P3",
                                                         "soc_version": "Ascend310P3", "atc_extra": list(extra)}}})
    meta, _ = read_om(ascend.compile(six_input_onnx(tmp_path / "m.onnx"), tmp_path / "om", 2))
    assert meta["precision"] == precision and meta["imitates"] == "ATC of CANN 8.0.RC2"


def test_a_missing_model_is_named(tmp_path: Path, monkeypatch) -> None:
    activate(monkeypatch)
    with pytest.raises(ZooreproError, match=r"model .*absent\.om does not exist"):
        backend().benchmark(tmp_path / "absent.om", 1, loop=1, warmup=0)
