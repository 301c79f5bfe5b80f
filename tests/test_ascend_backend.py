"""AscendBackend against the stand-in atc/ais_bench: real command lines, real file layouts,
outputs checked against onnxruntime run directly."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper
from standins_fixture import STANDINS, activate, ascend_env

from zoorepro.backends import get_backend
from zoorepro.backends.ascend import AscendBackend
from zoorepro.backends.ascend.ais_bench import summary_times
from zoorepro.backends.sample_layout import list_input_files, natural_key
from zoorepro.errors import ConfigError, ToolchainMissing, ZooreproError

N_SAMPLES = 10


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stand-ins in their strict current-version mode (ais_bench's 2024-02 path checks)."""
    activate(monkeypatch)


@pytest.fixture
def toolkit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the stand-in CANN 8.0.RC2 version files (for tests with a fake atc of their own)."""
    for name, value in ascend_env().items():
        monkeypatch.setenv(name, value)


def tiny_onnx(path: Path, batch: int | str) -> Path:
    """Two inputs of different dtypes, two outputs, batch dim static (int) or symbolic (str)."""
    weight = numpy_helper.from_array(np.arange(15, dtype=np.float32).reshape(5, 3) / 7, "w")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["a", "w"], ["logits"]),
            helper.make_node("Cast", ["b"], ["bf"], to=TensorProto.FLOAT),
            helper.make_node("Mul", ["bf", "bf"], ["squares"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [batch, 5]),
         helper.make_tensor_value_info("b", TensorProto.INT64, [batch, 2])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, 3]),
         helper.make_tensor_value_info("squares", TensorProto.FLOAT, [batch, 2])],
        [weight],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def per_sample_inputs(root: Path, rng: np.random.Generator) -> tuple[Path, Path]:
    """The document's layout: one folder per input, `{i}.npy` with a leading batch dim of 1."""
    a_dir, b_dir = root / "a", root / "b"
    a_dir.mkdir(parents=True)
    b_dir.mkdir()
    for i in range(N_SAMPLES):
        np.save(a_dir / f"{i}.npy", rng.standard_normal((1, 5)).astype(np.float32))
        np.save(b_dir / f"{i}.npy", rng.integers(-9, 9, (1, 2)))
    return a_dir, b_dir


def ascend_target(**settings: object) -> AscendBackend:
    """The 310P3 target built as the pipeline builds it (the factory), with these settings."""
    entry = {"backend": "ascend", "hardware": "310P3", **settings}
    return get_backend("310P3", {"targets": {"310P3": entry}})


def backend(**settings: object) -> AscendBackend:
    return ascend_target(**{"soc_version": "Ascend310P3", "device": 1, **settings})


def test_compile_then_infer_matches_onnxruntime_with_padding(tmp_path: Path, standin: None,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(STANDINS / "python"))
    from standin_atc import round_constants_to_fp16

    onnx_path = tiny_onnx(tmp_path / "tiny_bs4.onnx", 4)
    ascend = backend()
    ascend.check()
    om = ascend.compile(onnx_path, tmp_path / "om", 4)
    assert om == tmp_path / "om" / "model_bs4.om"
    a_dir, b_dir = per_sample_inputs(tmp_path / "in", np.random.default_rng(0))
    out_dir = tmp_path / "outputs" / "job"

    result = ascend.infer(om, [a_dir, b_dir], out_dir, 4)

    assert result.n_samples == N_SAMPLES
    assert result.summary["NPU_compute_time"]["count"] == 3  # 10 samples = 3 batches of 4
    assert (tmp_path / "outputs" / "job_summary.json").is_file()
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(
        f"{i}_{k}.npy" for i in range(N_SAMPLES) for k in (0, 1)
    )  # no outputs for the two padding samples
    # The stand-in ATC's default force_fp16 rounds the float constants through fp16, as ATC does.
    model = onnx.load(onnx_path)
    assert round_constants_to_fp16(model) == 1
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    a = np.concatenate([np.load(a_dir / f"{i}.npy") for i in range(N_SAMPLES)])
    b = np.concatenate([np.load(b_dir / f"{i}.npy") for i in range(N_SAMPLES)])
    for start in range(0, N_SAMPLES, 4):
        pad = [start] * (4 - len(a[start:start + 4]))  # ais_bench pads with that batch's first sample
        logits, squares = session.run(None, {"a": np.concatenate([a[start:start + 4], a[pad]]),
                                             "b": np.concatenate([b[start:start + 4], b[pad]])})
        for row, i in enumerate(range(start, min(start + 4, N_SAMPLES))):
            np.testing.assert_array_equal(np.load(out_dir / f"{i}_0.npy"), logits[row:row + 1])
            np.testing.assert_array_equal(np.load(out_dir / f"{i}_1.npy"), squares[row:row + 1])


def test_compile_replaces_only_its_own_batch_size(tmp_path: Path, standin: None) -> None:
    out = tmp_path / "om"
    out.mkdir()
    (out / "model_bs16.om").write_bytes(b"other batch size")
    (out / "model_bs1_linux_x86_64.om").write_bytes(b"stale")
    om = backend().compile(tiny_onnx(tmp_path / "m.onnx", 1), out, 1)
    assert om == out / "model_bs1.om"
    assert (out / "model_bs16.om").read_bytes() == b"other batch size"
    assert not (out / "model_bs1_linux_x86_64.om").exists()


def test_compile_renames_an_os_arch_suffixed_om(tmp_path: Path, toolkit: None, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_atc = bin_dir / "atc"  # an ATC that appends _linux_<arch> and litters its working dir
    fake_atc.write_text(
        '#!/usr/bin/env bash\nfor a in "$@"; do case $a in --output=*) out=${a#--output=};; esac; done\n'
        'touch fusion_result.json "${out}_linux_x86_64.om"\necho "ATC run success, welcome to the next use."\n'
    )
    fake_atc.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    out = tmp_path / "om"
    om = backend().compile(tiny_onnx(tmp_path / "m.onnx", 1), out, 1)
    assert om == out / "model_bs1.om" and om.is_file()
    assert [p.name for p in out.iterdir()] == ["model_bs1.om"]


def test_benchmark_follows_ais_bench_method(tmp_path: Path, standin: None) -> None:
    ascend = backend()
    om = ascend.compile(tiny_onnx(tmp_path / "m.onnx", 4), tmp_path / "om", 4)
    bench = ascend.benchmark(om, 4, loop=6, warmup=2)
    assert len(bench.times_ms) == 6
    assert bench.mean_ms == pytest.approx(np.mean(bench.times_ms))
    assert bench.median_ms == pytest.approx(np.median(bench.times_ms))
    assert bench.median_ms <= bench.p99_ms <= max(bench.times_ms)
    assert bench.throughput == pytest.approx(4000 / bench.mean_ms)
    assert bench.extra["tool_throughput"] == pytest.approx(bench.throughput)
    assert bench.e2e_mean_ms is not None and bench.e2e_mean_ms > bench.mean_ms
    assert bench.e2e_throughput == pytest.approx(4000 / bench.e2e_mean_ms)


def test_versions_read_the_toolkit_files_and_never_record_atc_console(tmp_path: Path, standin: None,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    versions = backend().versions()
    assert versions["cann"] == "8.0.RC2" and versions["standin"] is True  # the stand-in toolkit's files
    monkeypatch.delenv("ASCEND_TOOLKIT_HOME")
    monkeypatch.setenv("ASCEND_HOME", str(tmp_path))
    assert backend().versions()["cann"] == "unknown"  # not ATC's banner, not its error line
    (tmp_path / "driver").mkdir()
    (tmp_path / "driver" / "version.info").write_text("Version=23.0.0\nascendhal_version=7.35\n")
    latest = tmp_path / "ascend-toolkit" / "latest"
    (latest / "compiler").mkdir(parents=True)
    (latest / "compiler" / "version.info").write_text("Version=7.6.0.1.220\n")  # internal number: never read
    assert backend().versions()["cann"] == "unknown"
    (latest / "compiler" / "version.info").write_text("Version=7.6.0.1.220\nversion_dir=8.0.0\n")
    assert backend().versions()["cann"] == "8.0.0"
    (latest / "version.cfg").write_text("# version: 1.0\ntoolkit_running_version=[7.5.0.1.129:8.0.RC3]\n")
    assert backend().versions()["cann"] == "8.0.RC3"
    info = latest / "x86_64-linux" / "ascend_toolkit_install.info"
    info.parent.mkdir(parents=True)
    info.write_text("package_name=Ascend-cann-toolkit\nversion=6.0.1\n")
    versions = backend().versions()
    assert versions["cann"] == "6.0.1" and versions["driver"] == "23.0.0"
    assert versions["standin"] is True and versions["soc_version"] == "Ascend310P3"


@pytest.mark.parametrize("era", ["current", "2023"])
def test_atc_version_flag_behaves_as_the_eras_front_end(era: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The banner comes first in both; the gflags front end exits 0, the current one rejects the flag."""
    activate(monkeypatch, era)
    proc = subprocess.run(["atc", "--version"], capture_output=True, text=True, check=False)
    assert proc.stdout.splitlines()[0] == "ATC start working now, please wait for a moment."
    if era == "current":
        assert proc.returncode != 0 and "unknown command line flag 'version'" in proc.stderr
    else:
        assert proc.returncode == 0 and proc.stdout.splitlines()[-1] == "atc.bin"
    assert backend().versions()["cann"] == {"current": "8.0.RC2", "2023": "6.0.1"}[era]


def test_check_names_missing_tools_and_portable_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("PYTHONPATH", raising=False)
    with pytest.raises(ToolchainMissing) as err:
        backend().check()
    message = str(err.value)
    for needle in ("atc", "set_env.sh", "ais_bench", "aclruntime", "cpu", "cuda"):
        assert needle in message


def test_check_reports_only_ais_bench_when_atc_exists(standin: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTHONPATH")
    with pytest.raises(ToolchainMissing, match="ais_bench") as err:
        backend().check()
    assert "not on PATH" not in str(err.value)


def test_dynamic_onnx_fails_in_atc(tmp_path: Path, standin: None) -> None:
    with pytest.raises(ZooreproError, match="dynamic shape"):
        backend().compile(tiny_onnx(tmp_path / "dyn.onnx", "batch"), tmp_path / "om", 1)


def test_bad_soc_version_fails_in_atc(tmp_path: Path, standin: None) -> None:
    with pytest.raises(ZooreproError, match="ATC run failed"):
        backend(soc_version="Ascend999").compile(tiny_onnx(tmp_path / "m.onnx", 1), tmp_path / "om", 1)


def test_infer_refuses_a_real_om_and_wrong_input_count(tmp_path: Path, standin: None) -> None:
    ascend = backend()
    a_dir, b_dir = per_sample_inputs(tmp_path / "in", np.random.default_rng(1))
    fake = tmp_path / "real.om"
    fake.write_bytes(b"\x00IMOD not a stand-in")
    with pytest.raises(ZooreproError, match="not a stand-in OM"):
        ascend.infer(fake, [a_dir, b_dir], tmp_path / "out1", 1)
    om = ascend.compile(tiny_onnx(tmp_path / "m.onnx", 1), tmp_path / "om", 1)
    with pytest.raises(ZooreproError, match="1 inputs given, the model has 2"):
        ascend.infer(om, [a_dir], tmp_path / "out2", 1)


def test_infer_refuses_nonempty_output_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "0_0.npy").write_bytes(b"old")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "0.npy").write_bytes(b"")
    with pytest.raises(ZooreproError, match="not empty"):
        backend().infer(tmp_path / "m.om", [tmp_path / "a"], out, 1)


def test_settings_are_validated() -> None:
    with pytest.raises(ConfigError, match="soc_version"):
        ascend_target()
    with pytest.raises(ConfigError, match="ais_bench"):
        backend(ais_bench="python -m ais_bench")
    with pytest.raises(ConfigError, match="device"):
        backend(device="1")


def test_input_files_follow_natural_order(tmp_path: Path) -> None:
    for name in ("10.npy", "2.npy", "1.bin", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in list_input_files(tmp_path)] == ["1.bin", "2.npy", "10.npy"]
    assert sorted(["b10", "b9", "a"], key=natural_key) == ["a", "b9", "b10"]


def test_summary_without_timings_is_an_error() -> None:
    with pytest.raises(ZooreproError, match="npu_compute_time_list"):
        summary_times({"NPU_compute_time": {"mean": 1.0, "median": 1.0, "percentile(99%)": 1.0}, "throughput": 1.0})


def test_atc_gets_the_documents_flags_then_tool_args_then_atc_extra(tmp_path: Path, toolkit: None,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The backend adds no model's flags: op selection comes in as the caller's tool_args."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    argv_file = tmp_path / "argv.txt"
    fake_atc = bin_dir / "atc"  # records its argv, then writes the OM ATC would
    fake_atc.write_text(
        f'#!/usr/bin/env bash\nprintf "%s\\n" "$@" > {argv_file}\n'
        'for a in "$@"; do case $a in --output=*) out=${a#--output=};; esac; done\ntouch "${out}.om"\n'
    )
    fake_atc.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    onnx_path = tiny_onnx(tmp_path / "m.onnx", 4)
    gelu = ["--optypelist_for_implmode=Gelu", "--op_select_implmode=high_performance"]
    om = backend(atc_extra=["--precision_mode=allow_fp32_to_fp16"]).compile(
        onnx_path, tmp_path / "om", 4, input_shapes={"a": ["bs", 5], "b": ["bs", 2]}, tool_args=gelu)
    assert om == tmp_path / "om" / "model_bs4.om"
    assert argv_file.read_text().splitlines() == [
        "--framework=5", f"--model={onnx_path}", f"--output={tmp_path / 'om' / 'model_bs4'}", "--input_format=ND",
        "--log=error", "--soc_version=Ascend310P3", *gelu, "--precision_mode=allow_fp32_to_fp16",
    ]
    backend().compile(onnx_path, tmp_path / "om", 4)
    assert argv_file.read_text().splitlines() == [
        "--framework=5", f"--model={onnx_path}", f"--output={tmp_path / 'om' / 'model_bs4'}", "--input_format=ND",
        "--log=error", "--soc_version=Ascend310P3",
    ]


def test_tool_args_reach_the_standin_atc(tmp_path: Path, standin: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(STANDINS / "python"))
    from standin_om import read_om

    om = backend().compile(tiny_onnx(tmp_path / "m.onnx", 1), tmp_path / "om", 1,
                           tool_args=["--optypelist_for_implmode=Gelu", "--op_select_implmode=high_performance"])
    assert read_om(om)[0]["options"]["optypelist_for_implmode"] == "Gelu"
    plain = backend().compile(tiny_onnx(tmp_path / "m.onnx", 1), tmp_path / "om2", 1)
    assert read_om(plain)[0]["options"]["optypelist_for_implmode"] is None


@pytest.mark.parametrize("kwargs", [{"tool_args": "--log=info"}, {"tool_args": [3]},
                                    {"input_shapes": {"a": [0, 5]}}, {"input_shapes": {}}])
def test_compile_arguments_are_checked_before_atc_runs(tmp_path: Path, kwargs: dict) -> None:
    with pytest.raises(ZooreproError, match="tool_args|input_shapes"):
        backend().compile(tmp_path / "absent.onnx", tmp_path / "om", 1, **kwargs)
    assert not (tmp_path / "om").exists()


@pytest.mark.parametrize(("settings", "key"), [
    ({"device": -1}, "device"), ({"atc_extra": "--log=info"}, "atc_extra"), ({"ais_bench": []}, "ais_bench"),
    ({"soc_version": ""}, "soc_version"), ({"input_shapes": {}}, "input_shapes"),
])
def test_bad_settings_name_their_key(settings: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"targets\.310P3\.{key}\b"):
        backend(**settings)


def test_building_runs_no_tool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rules build backends to read precision and suffix: that must work with no toolchain."""
    monkeypatch.setenv("PATH", str(tmp_path))
    ascend = backend()
    assert (ascend.name, ascend.precision, ascend.artifact_suffix, ascend.compile_tool) == ("ascend", "fp16", "om", "atc")
    assert ascend.artifact_name(8) == "model_bs8.om" and ascend.harness("bytemlperf") is None
