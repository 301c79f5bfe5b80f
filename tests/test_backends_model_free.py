"""Backends know no model: no model name in zoorepro/backends/, every backend built by the one
factory from typed settings, and what rules read from a backend (precision, artifact suffix)
available without a toolchain."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from zoorepro.backends import BACKENDS, Backend, backend_class, get_backend
from zoorepro.backends.tools import portable_hint, toolchain_missing
from zoorepro.errors import ConfigError, ToolchainMissing

ROOT = Path(__file__).resolve().parent.parent
BACKENDS_DIR = ROOT / "zoorepro" / "backends"
MODEL_NAMES = re.compile(r"vilbert|videobert|actbert|llava|clipbert", re.IGNORECASE)


def test_no_backend_file_names_a_model() -> None:
    hits = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
            for path in sorted(BACKENDS_DIR.rglob("*")) if path.is_file() and path.suffix in (".py", ".md", ".txt")
            for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
            if MODEL_NAMES.search(line) or MODEL_NAMES.search(path.name)]
    assert not hits, "generic backend code names a model:\n" + "\n".join(hits)


def test_every_params_target_builds_through_the_factory_without_a_toolchain(params, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no tool can run: building must not need one
    expected = {"onnxruntime": ("fp32", "onnx"), "ascend": ("fp16", "om"), "ixrt": ("fp16", "engine")}
    for target, settings in params["targets"].items():
        if "backend" not in settings:  # a target only runners drive (npu: MindIE-LLM), no ONNX backend
            with pytest.raises(ConfigError, match=f"targets.{target}.backend must be one of"):
                get_backend(target, params)
            continue
        backend = get_backend(target, params)
        assert isinstance(backend, backend_class(settings["backend"]))
        assert backend.target == target and backend.config.target == target
        assert (backend.precision, backend.artifact_suffix) == expected[backend.name]
        assert backend.artifact_name(4) == f"model_bs4.{backend.artifact_suffix}"


def test_registry_classes_declare_what_rules_read() -> None:
    for name in BACKENDS:
        cls = backend_class(name)
        assert issubclass(cls, Backend) and cls.name == name
        for attr in ("precision", "artifact_suffix", "config_class"):
            assert getattr(cls, attr)
        assert isinstance(cls.harnesses, frozenset) and all(isinstance(h, str) for h in cls.harnesses)


def test_backends_take_only_a_typed_config() -> None:
    with pytest.raises(TypeError, match="get_backend"):
        backend_class("onnxruntime")({"provider": "CPUExecutionProvider"})


@pytest.mark.parametrize(("entry", "message"), [
    ({"backend": "tensorrt"}, r"targets\.t\.backend must be one of"),
    ({"backend": "onnxruntime"}, r"targets\.t\.provider is required"),
    ({"backend": "onnxruntime", "provider": "CPUExecutionProvider", "soc_version": "x"},
     r"targets\.t\.soc_version is not a setting of the onnxruntime backend"),
    ({"backend": "ascend", "soc_version": "Ascend310", "device": "0"}, r"targets\.t\.device must be a non-negative"),
    ({"backend": "ixrt", "python": 3}, r"targets\.t\.python must be a command name or path"),
])
def test_settings_are_checked_once_in_the_factory(entry: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        get_backend("t", {"targets": {"t": entry}})


def test_unknown_target_lists_the_known_ones(params) -> None:
    with pytest.raises(ConfigError, match="unknown target 'npu9'"):
        get_backend("npu9", params)


def test_the_missing_tool_message_names_the_portable_targets_not_a_model() -> None:
    err = toolchain_missing("310", "the Ascend toolchain", ["`atc` is not on PATH: install CANN"])
    assert isinstance(err, ToolchainMissing)
    assert str(err) == ("target '310' needs the Ascend toolchain: `atc` is not on PATH: install CANN; or run a "
                        "portable target instead: `cpu` (snakemake results[/mini]/<model>_cpu.csv), or `cuda` where "
                        "onnxruntime-gpu is installed.")
    assert "`cuda`" not in portable_hint("cuda") and "`cpu`" in portable_hint("cuda")
