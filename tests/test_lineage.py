"""Lineage records (zoorepro/lineage.py): a measurement's chain of artifacts is followed back by
content hash; a rebuilt or deleted ancestor breaks it, and the stale pass removes what was built
from it so the next run rebuilds, instead of keeping a number measured on an old artifact."""
import json

import pytest

from zoorepro import lineage
from zoorepro.measurements import Measurement, read_measurements, write_measurements


@pytest.fixture
def chain(tmp_path, monkeypatch):
    """root.onnx -> sim.onnx -> model.bin -> perf.json, each recorded as its step records it."""
    monkeypatch.chdir(tmp_path)
    files = {name: lineage.Path(name) for name in ("root.onnx", "sim.onnx", "model.bin", "perf.json")}
    files["root.onnx"].write_text("opset 17")
    previous = None
    for name, path in files.items():
        if previous is not None:
            path.write_text(f"{name} from {previous.read_text()}")
            lineage.record(path, [previous])
        previous = path
    return files


def test_an_intact_chain_verifies_and_a_measurement_carries_the_hash_it_was_measured_on(chain, tmp_path):
    records = write_measurements(tmp_path / "m.json", [
        Measurement("throughput", "throughput", 1.0, "samples/s", batch_size=1, raw=("perf.json",))])
    assert records[0].lineage == {"perf.json": lineage.hashes(["perf.json"])["perf.json"]}
    assert read_measurements(tmp_path / "m.json")[0].lineage == records[0].lineage
    assert lineage.verify(records[0].lineage) == []


def test_a_rebuilt_ancestor_breaks_every_chain_below_it(chain):
    measured = lineage.hashes(["perf.json"])
    chain["sim.onnx"].write_text("sim.onnx from opset 16")
    lineage.record(chain["sim.onnx"], [chain["root.onnx"]])
    assert lineage.verify(measured) == ["model.bin was built from another version of sim.onnx (rebuilt since)"]


def test_a_deleted_intermediate_breaks_the_chain_and_the_stale_pass_rebuilds_downstream(chain, tmp_path):
    measured = lineage.hashes(["perf.json"])
    chain["sim.onnx"].unlink()  # what Snakemake leaves after killing the job that rebuilt it
    assert lineage.verify(measured) == ["model.bin was built from sim.onnx, which is gone (an interrupted or deleted job)"]
    assert lineage.invalidate_stale(".", dry_run=True) == [chain["model.bin"], chain["perf.json"]]
    removed = lineage.invalidate_stale(".")
    assert removed == [chain["model.bin"], chain["perf.json"]]  # and what was built from it
    assert not chain["perf.json"].exists() and not lineage.sidecar(chain["perf.json"]).exists()
    assert not lineage.sidecar(chain["sim.onnx"]).exists()  # an orphan sidecar is dropped
    assert chain["root.onnx"].exists()
    assert lineage.verify(measured) == ["perf.json is gone"]


def test_a_changed_raw_output_and_a_raw_output_without_lineage_are_refused(chain, tmp_path):
    measured = lineage.hashes(["perf.json"])
    chain["perf.json"].write_text("edited")
    assert lineage.verify(measured) == ["perf.json changed after it was measured"]
    (tmp_path / "loose.json").write_text("{}")
    problems = lineage.verify(lineage.hashes(["loose.json"]))
    assert problems == ["loose.json has no lineage record (written by a step that does not record one)"]


def test_a_part_of_an_artifact_is_verified_through_its_enclosing_artifact(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.txt").write_text("v1")
    pre = lineage.Path("preprocessed")
    (pre / "labels").mkdir(parents=True)
    (pre / "labels" / "0.npy").write_text("x")
    lineage.record(pre, ["data.txt"])
    measured = lineage.hashes(["preprocessed/labels"])
    assert lineage.owner("preprocessed/labels") == lineage.Path("preprocessed")
    assert lineage.verify(measured) == []
    (tmp_path / "data.txt").write_text("v2")
    assert lineage.verify(measured) == ["preprocessed was built from another version of data.txt (rebuilt since)"]


def test_an_unchanged_artifact_is_not_read_again(chain, monkeypatch):
    calls = []
    real = lineage.hash_path
    monkeypatch.setattr(lineage, "hash_path", lambda p: calls.append(p) or real(p))
    assert lineage.verify(lineage.hashes(["perf.json"])) == []
    assert calls == []  # every signature held: sizes, mtimes and counts, no bytes read
    record = json.loads(lineage.sidecar(chain["perf.json"]).read_text())
    assert set(record) == {"sha256", "signature", "inputs"} and list(record["inputs"]) == ["model.bin"]


def test_the_table_step_refuses_rows_from_a_broken_chain_naming_them(chain, tmp_path):
    from zoorepro.claims import load_claims
    from zoorepro.errors import ZooreproError
    from zoorepro.report import make_table
    from zoorepro.verdicts import RunContext

    write_measurements(tmp_path / "m.json", [
        Measurement("throughput", "throughput", 190.0, "samples/s", batch_size=16, raw=("perf.json",))])
    tol = {"throughput_relative": 0.1, "accuracy_points": 1.0, "planted_points": 0.01}
    ctx = RunContext("vilbert", "310P3", "310P3", "full")
    make_table(ctx, [str(tmp_path / "m.json")], load_claims(), tol, tmp_path / "ok.csv")
    chain["sim.onnx"].unlink()
    with pytest.raises(ZooreproError, match="throughput bs16: model.bin was built from sim.onnx, which is gone"):
        make_table(ctx, [str(tmp_path / "m.json")], load_claims(), tol, tmp_path / "t.csv")
    assert not (tmp_path / "t.csv").exists()


def test_files_renamed_inside_a_recorded_folder_are_seen_without_reading_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = lineage.Path("outputs")
    out.mkdir()
    for i in (2, 10):
        (out / f"{i}_0.npy").write_text(f"sample {i}")
    lineage.record(out, [])
    measured = lineage.hashes(["outputs"])
    (out / "2_0.npy").rename(out / "tmp")
    (out / "10_0.npy").rename(out / "2_0.npy")
    (out / "tmp").rename(out / "10_0.npy")  # same names, sizes and mtimes: only the pairing moved
    assert lineage.verify(measured) == ["outputs changed after it was measured"]


def test_a_measurement_file_goes_with_its_stale_raw_output_so_its_step_reruns(chain, tmp_path):
    write_measurements(lineage.Path("m.json"), [
        Measurement("throughput", "throughput", 1.0, "samples/s", batch_size=1, raw=("perf.json",))])
    chain["sim.onnx"].unlink()
    removed = lineage.invalidate_stale(".")
    assert lineage.Path("m.json") in removed and not lineage.Path("m.json").exists()
