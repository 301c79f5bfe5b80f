"""Corrupt artifacts end in one error naming the file, from the readers and from a step's CLI."""
import subprocess
import sys

import numpy as np
import pytest

from zoorepro.backends import get_backend
from zoorepro.readers import CorruptArtifact, load_npy, load_onnx


@pytest.fixture
def corrupt(tmp_path):
    npy = tmp_path / "0.npy"
    np.save(npy, np.zeros((1, 4), dtype=np.float32))
    npy.write_bytes(npy.read_bytes()[:-7])  # truncated, as a killed writer leaves it
    onnx_file = tmp_path / "model.onnx"
    onnx_file.write_bytes(b"\x08\x07not a protobuf" * 4)
    return npy, onnx_file


def test_readers_name_the_corrupt_file(corrupt, params):
    npy, onnx_file = corrupt
    with pytest.raises(CorruptArtifact, match=f"{npy}: not a readable .npy"):
        load_npy(npy)
    with pytest.raises(CorruptArtifact, match=f"{onnx_file}: not a readable ONNX model"):
        load_onnx(onnx_file)
    with pytest.raises(CorruptArtifact, match=f"{onnx_file}: onnxruntime cannot load it"):
        get_backend("cpu", params).session(onnx_file)


def test_a_step_given_a_corrupt_output_prints_one_error_naming_it(corrupt, tmp_path):
    npy, _ = corrupt
    ref = tmp_path / "ref"
    ref.mkdir()
    np.save(ref / "0_0.npy", np.zeros((1, 4), dtype=np.float32))
    out = tmp_path / "out"
    out.mkdir()
    npy.rename(out / "0_0.npy")
    proc = subprocess.run([sys.executable, "-m", "zoorepro.steps.compare", "--reference", str(ref), "--outputs",
                           str(out), "--output-names", "logits", "--label", "ref", "--batch-size", "1",
                           "--precision", "fp32", "--measurements", str(tmp_path / "m.json")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: {out / '0_0.npy'}: not a readable .npy array "
                                                + proc.stderr.split("array ", 1)[1].strip()]
    assert "Traceback" not in proc.stderr
