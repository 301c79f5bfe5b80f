"""A kill -9 during an incremental rebuild of the mini ViLBERT chain, in a copy of the suite's one
build of the mini DAG (conftest.mini_dag): the same command again ends in a consistent table."""
import os
import subprocess

import pytest
from conftest import VENV_BIN, built_copy

from zoorepro.report import read_table


@pytest.fixture(scope="module")
def repo(tmp_path_factory, mini_dag):
    return built_copy(mini_dag, tmp_path_factory.mktemp("e2e_recovery") / "repo")


def _kill_when_running(pattern: str, timeout: float = 600) -> bool:
    """kill -9 the first process whose command line matches `pattern` (a job's step), polling."""
    import re
    import signal
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if re.search(pattern, cmd) and "python" in cmd.split()[0]:
                os.kill(int(pid), signal.SIGKILL)
                return True
        time.sleep(0.02)
    return False


def test_a_job_killed_during_an_incremental_rebuild_never_leaves_a_mixed_table(repo):
    """The opset change + kill -9 of one fix_onnx job: Snakemake deletes that job's output and,
    on the rerun, would keep the old compiled bs16 model (its consumer's outputs exist). The lineage
    pass removes what was built from the gone intermediate, so the rerun of the same command ends
    in a table whose every row descends from the new opset-12 export. The rebuild runs batch sizes
    1 (the accuracy run's) and 16 (the killed job's) only: the other four chains would repeat the
    same lineage case at ~10 CPU-s each."""
    import onnx

    params = repo / "params.yaml"
    original = params.read_text()
    command = [str(VENV_BIN / "snakemake"), "--cores", "2", "--rerun-incomplete", "results/mini/vilbert_cpu.csv"]
    try:
        assert original.count("batch_sizes: [1, 4, 8, 16, 32, 64]") == 1
        params.write_text(original.replace("opset: 11", "opset: 12", 1)
                          .replace("batch_sizes: [1, 4, 8, 16, 32, 64]", "batch_sizes: [1, 16]"))
        first = subprocess.Popen(command, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        killed = _kill_when_running(r"zoorepro\.vilbert\.fix_onnx \S*bs16_sim\.onnx")
        out = first.communicate(timeout=1200)[0]
        assert killed, out[-3000:]
        assert first.returncode != 0  # the killed job failed the run
        assert not (repo / "work/mini/vilbert/onnx/vqa-vilbert_bs16_sim_fix.onnx").exists()
        rerun = subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=1200)
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        assert "lineage: work/mini/vilbert/cpu/model_bs16.onnx removed, to be rebuilt" in rerun.stderr
        for bs in (1, 16):
            compiled = onnx.load(str(repo / f"work/mini/vilbert/cpu/model_bs{bs}.onnx"), load_external_data=False)
            assert {o.domain: o.version for o in compiled.opset_import}[""] == 12, bs
        rows = read_table(repo / "results/mini/vilbert_cpu.csv")
        measured = [r for r in rows if r["reproduced"]]
        assert {r["batch_size"] for r in measured if r["metric"] == "throughput"} == {"1", "16"}
        assert {r["verdict"] for r in measured if r["claim_id"].startswith("vilbert.mini.")} == {"REPRODUCED"}
    finally:
        params.write_text(original)
