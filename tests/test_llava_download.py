"""LLaVA-NeXT-Video's checkpoint download (zoorepro/llava_video/download_checkpoint.py) without a hub:
huggingface_hub's snapshot is replaced by a copy of a local folder, so what is tested is ours: the
pins (a 40-hex revision, never a branch), trust on first use, the sha256 of every file, and the
marker written only after verification. Also the per-hardware runner mapping of pipeline.RUNNER."""
from __future__ import annotations

import json
import shutil

import pytest
import yaml

from zoorepro import models
from zoorepro.config import load_params
from zoorepro.errors import ChecksumError, ConfigError, ZooreproError
from zoorepro.fsutil import sha256sum
from zoorepro.llava_video import download_checkpoint as dc

REV = "a" * 40


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A fake hub: one snapshot folder; snapshot() copies it into the destination."""
    source = tmp_path / "hub"
    source.mkdir()
    (source / "config.json").write_text('{"model_type": "llava_next_video"}')
    (source / "model.safetensors").write_bytes(b"weights")
    (source / ".gitattributes").write_text("*.safetensors filter=lfs")
    calls = []

    def fake_snapshot(repo, revision, dest):
        calls.append((repo, revision))
        shutil.copytree(source, dest, dirs_exist_ok=True)
        return revision or "b" * 40

    monkeypatch.setattr(dc, "snapshot", fake_snapshot)
    return source, calls


def manifest(tmp_path, revision=REV, files=None):
    path = tmp_path / "checkpoints.yaml"
    path.write_text(yaml.safe_dump({"checkpoints": {"7B": {"repo": "llava-hf/LLaVA-NeXT-Video-7B-hf",
                                                            "revision": revision, "files": files or {}}}}))
    return path


def test_pinned_snapshot_is_verified(tmp_path, hub):
    source, calls = hub
    files = {name: sha256sum(source / name) for name in ("config.json", "model.safetensors")}
    dest = dc.fetch(manifest(tmp_path, files=files), "7B", tmp_path / "models")
    assert calls == [("llava-hf/LLaVA-NeXT-Video-7B-hf", REV)]
    record = json.loads((dest / dc.VERIFIED).read_text())
    assert record["revision"] == REV and record["files"] == files and not record["trusted_on_first_use"]


def test_a_changed_file_fails_and_nothing_is_marked(tmp_path, hub):
    source, _ = hub
    files = {"config.json": sha256sum(source / "config.json"), "model.safetensors": "0" * 64}
    with pytest.raises(ChecksumError, match="sha256 differs"):
        dc.fetch(manifest(tmp_path, files=files), "7B", tmp_path / "models")
    assert not (tmp_path / "models" / dc.folder_name("7B") / dc.VERIFIED).exists()


def test_an_unpinned_file_fails(tmp_path, hub):
    source, _ = hub
    with pytest.raises(ChecksumError, match="not pinned"):
        dc.fetch(manifest(tmp_path, files={"config.json": sha256sum(source / "config.json")}), "7B", tmp_path / "m")


def test_unpinned_checkpoint_needs_trust_on_first_use(tmp_path, hub, capsys):
    with pytest.raises(ZooreproError, match="trust_on_first_use"):
        dc.fetch(manifest(tmp_path, revision=None), "7B", tmp_path / "models")
    dest = dc.fetch(manifest(tmp_path, revision=None), "7B", tmp_path / "models", trust_on_first_use=True)
    record = json.loads((dest / dc.VERIFIED).read_text())
    assert record["trusted_on_first_use"] and record["revision"] == "b" * 40
    assert "model.safetensors" in capsys.readouterr().out


def test_a_branch_is_not_a_revision(tmp_path):
    with pytest.raises(ZooreproError, match="40-hex"):
        dc.load_pins(manifest(tmp_path, revision="main"), "7B")


def test_the_shipped_manifest_names_every_checkpoint():
    pins = yaml.safe_load(open(models.PACKAGE_DIR.parent / "manifests/llava_video_checkpoints.yaml"))["checkpoints"]
    assert set(pins) == set(models.pipeline("llava_video").CHECKPOINTS)
    for ckpt in pins:
        dc.load_pins(models.PACKAGE_DIR.parent / "manifests/llava_video_checkpoints.yaml", ckpt)


def test_runner_per_hardware():
    params = load_params()
    assert models.runner_name("llava_video", "cpu", params) == "transformers"
    assert models.runner_name("llava_video", "npu", params) == "mindie"
    assert models.runner_name("vilbert", "npu", params) is None
    params["targets"]["mrv100x"] = {"hardware": "mrv100"}
    with pytest.raises(ConfigError, match="runs on cpu, cuda, npu"):
        models.runner_name("llava_video", "mrv100x", params)
