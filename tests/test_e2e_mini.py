"""The mini ViLBERT chain end to end, in a copy of the repo: `dvc repro` builds the cpu table,
a second `dvc repro` runs nothing, a parameter change reruns only that model's stages, `dvc push`
+ a fresh clone's `dvc pull` restore everything, and the 310P3 / 310 tables come out of the same
DAG with stand-in vendor tools on PATH (marked stand-in, never comparable)."""
import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import VENV_BIN, copy_repo, run, standin_env

from zoorepro.provenance import hash_path
from zoorepro.report import read_table


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    repo = copy_repo(tmp_path_factory.mktemp("e2e") / "repo")
    remote = tmp_path_factory.mktemp("remote")
    run(["dvc", "remote", "modify", "--local", "local", "url", str(remote)], cwd=repo)
    proc = run(["dvc", "repro"], cwd=repo)
    (repo / "repro.log").write_text(proc.stdout + proc.stderr)
    return repo


def test_dvc_repro_builds_the_mini_cpu_table(repo):
    rows = read_table(repo / "results/mini/vilbert_cpu.csv")
    assert {r["scale"] for r in rows} == {"mini"}
    measured = [r for r in rows if r["reproduced"]]
    metrics = {r["metric"] for r in measured}
    assert {"precision", "recall", "fscore", "vqa_score", "throughput", "throughput_e2e",
            "parity_max_abs_logits", "parity_min_cosine_logits"} <= metrics
    assert {r["batch_size"] for r in measured if r["metric"] == "throughput"} == {"1", "4", "8", "16", "32", "64"}
    assert {r["verdict"] for r in measured if not r["claim_id"].startswith("vilbert.mini.")} <= {"NOT_COMPARABLE", "NO_CLAIM"}
    planted = {r["metric"]: r["verdict"] for r in measured if r["claim_id"].startswith("vilbert.mini.")}
    assert planted == {m: "REPRODUCED" for m in ("precision", "recall", "fscore", "vqa_score")}
    parity = next(r for r in measured if r["metric"] == "parity_max_abs_logits")
    assert float(parity["reproduced"]) < 1e-3
    cosine = next(r for r in measured if r["metric"] == "parity_min_cosine_logits")
    assert float(cosine["reproduced"]) > 0.9999


def test_parity_rows_come_from_the_one_compare_step(repo):
    """ViLBERT's parity rows are the compare step's records (reference: the exported ONNX's golden
    outputs, params vilbert.compare), each naming both sides as its raw files."""
    records = json.loads((repo / "work/mini/vilbert/cpu/compare.measurements.json").read_text())
    assert [r["metric"] for r in records] == ["parity_max_abs_logits", "parity_min_cosine_logits",
                                              "parity_max_abs_probs", "parity_min_cosine_probs"]
    assert all(r["raw"] == ["work/mini/vilbert/onnx/golden/outputs", "work/mini/vilbert/cpu/outputs"]
               for r in records)
    rows = {r["metric"]: r for r in read_table(repo / "results/mini/vilbert_cpu.csv") if r["kind"] == "parity"}
    assert {m: float(r["reproduced"]) for m, r in rows.items()} == pytest.approx(
        {r["metric"]: r["value"] for r in records}, rel=1e-5)


def test_dvc_repro_builds_the_mini_videobert_cpu_table(repo):
    rows = read_table(repo / "results/mini/videobert_cpu.csv")
    measured = [r for r in rows if r["reproduced"] and r["claim_id"] != "videobert.mini.top1"]
    assert {r["verdict"] for r in measured} <= {"NOT_COMPARABLE", "NO_CLAIM"}
    top1 = next(r for r in measured if r["metric"] == "top1")
    assert top1["unit"] == "percent" and top1["batch_size"] == "4" and 0 <= float(top1["reproduced"]) <= 100
    planted = next(r for r in rows if r["claim_id"] == "videobert.mini.top1")  # tests/test_planted_videobert.py
    assert planted["verdict"] == "REPRODUCED" and planted["reproduced"] == top1["reproduced"]
    for metric in ("throughput", "throughput_batches", "latency_mean", "latency_p99"):
        assert {r["batch_size"] for r in measured if r["metric"] == metric} == {"4", "8", "16", "24"}, metric
    samples = {r["batch_size"]: float(r["reproduced"]) for r in measured if r["metric"] == "throughput"}
    batches = {r["batch_size"]: float(r["reproduced"]) for r in measured if r["metric"] == "throughput_batches"}
    assert all(samples[bs] == pytest.approx(batches[bs] * int(bs), rel=1e-4) for bs in samples)  # 6 digits in the csv
    qps = next(r for r in rows if r["claim_id"] == "videobert.mrv100.throughput.bs4")
    assert qps["metric"] == "throughput_batches" and qps["batch_size"] == "16"
    assert "reading: batches/s at bs16" in qps["note"]
    report = json.loads((repo / "work/mini/videobert/cpu/report/result-fp32.json").read_text())
    assert report["Accuracy"]["Top-1"] == pytest.approx(float(top1["reproduced"]) / 100)
    assert [p["BS"] for p in report["Performance"]] == [4, 8, 16, 24]


def test_dvc_repro_builds_the_mini_actbert_cpu_table_with_pretraining_rows(repo):
    rows = read_table(repo / "results/mini/actbert_cpu.csv")
    planted = {r["metric"]: r for r in rows if r["claim_id"].startswith("actbert.mini.")}
    measured = {r["metric"]: r for r in rows if r["reproduced"] and not r["claim_id"].startswith("actbert.mini.")}
    assert {"R@1", "R@5", "R@10", "MedianR", "MeanR", "throughput", "harness_overhead",
            "pretrain_loss_first", "pretrain_loss_last"} <= set(measured)
    r = {k: float(measured[k]["reproduced"]) for k in ("R@1", "R@5", "R@10", "MedianR", "MeanR")}
    assert 0 <= r["R@1"] <= r["R@5"] <= r["R@10"] <= 100 and r["MedianR"] >= 1 and r["MeanR"] >= 1
    assert measured["R@1"]["verdict"] == "NOT_COMPARABLE" and measured["throughput"]["unit"] == "captions/s"
    first, last = measured["pretrain_loss_first"], measured["pretrain_loss_last"]  # 2 launched cpu processes
    assert first["batch_size"] == last["batch_size"] == "2" and float(last["reproduced"]) < float(first["reproduced"])
    # the generator's planted values, judged tightly: the chain computes what the eager model predicted
    assert set(planted) == set(r) and {p["verdict"] for p in planted.values()} == {"REPRODUCED"}
    assert all(float(planted[k]["reproduced"]) == r[k] for k in r)
    metrics = json.loads((repo / "work/mini/actbert/cpu/metrics.json").read_text())
    assert metrics["device"] == "cpu" and metrics["n_captions"] == metrics["n_videos"] == 24
    for key in ("R@1", "R@5", "R@10", "MedianR", "MeanR"):  # PaddleVideo's log line vs our recomputed ranks
        assert metrics["logged"][key] == pytest.approx(metrics["recomputed"][key], abs=1e-3)
        assert r[key] == pytest.approx(metrics["recomputed"][key], rel=1e-5)


def test_provenance_hashes_match_the_raw_outputs_kept_in_work(repo):
    prov = json.loads((repo / "results/mini/vilbert_cpu.provenance.json").read_text())
    assert prov["git"]["commit"] and prov["packages"]["onnxruntime"] and prov["host"]["hostname"] is not None
    outputs = "work/mini/vilbert/cpu/outputs"
    assert prov["raw"][outputs]["sha256"] == hash_path(repo / outputs)["sha256"]
    assert prov["raw"][outputs]["files"] == 2 * len(list((repo / "work/mini/vilbert/preprocessed/labels").iterdir()))
    rows = read_table(repo / "results/mini/vilbert_cpu.csv")
    assert all(r["raw_sha256"] for r in rows if r["reproduced"])


def test_second_dvc_repro_runs_nothing(repo):
    proc = run(["dvc", "repro"], cwd=repo)
    out = proc.stdout + proc.stderr
    assert "Running stage" not in out, out
    assert "up to date" in run(["dvc", "status"], cwd=repo).stdout


def test_a_model_parameter_change_reruns_only_that_models_table_stage(repo):
    params = repo / "params.yaml"
    original = params.read_text()
    try:
        params.write_text(original.replace("loop: 20", "loop: 21"))
        status = run(["dvc", "status", "--json"], cwd=repo).stdout
        changed = set(json.loads(status))
        assert changed == {"vilbert_mini_cpu"}, changed
    finally:
        params.write_text(original)


def test_dvc_push_and_a_fresh_clones_pull_restore_without_recomputing(repo, tmp_path):
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    run(["git", "add", "-A"], cwd=repo)
    run([*git, "commit", "-qm", "repro"], cwd=repo)
    run(["dvc", "push"], cwd=repo)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    remote_url = run(["dvc", "remote", "list", "--local"], cwd=repo).stdout.split()[1]
    run(["dvc", "remote", "modify", "--local", "local", "url", remote_url], cwd=clone)
    run(["dvc", "pull"], cwd=clone)
    assert (clone / "work/mini/vilbert/onnx/vqa-vilbert.onnx").exists()
    assert (clone / "work/mini/vilbert/cpu/outputs").is_dir()
    assert "up to date" in run(["dvc", "status"], cwd=clone).stdout
    proc = run(["dvc", "repro"], cwd=clone)
    assert "Running stage" not in proc.stdout + proc.stderr


@pytest.mark.parametrize(("chip", "era"), [("310P3", "current"), ("310", "current"), ("310P3", "2023")])
def test_standin_vendor_tools_produce_the_chip_tables_end_to_end(repo, chip, era):
    """`current`: ais_bench with its 2024-02 path checks (0o750 output folders, real-file .om), CANN
    8.0.RC2's ATC; `2023`: the ais_bench of June 2023 and CANN 6.0.1. Each run starts from no
    chip artifacts, so the 2023 run rebuilds every OM and output with the older tools."""
    shutil.rmtree(repo / f"work/mini/vilbert/{chip}", ignore_errors=True)
    for stale in repo.glob(f"results/mini/vilbert_{chip}.*"):
        stale.unlink()
    run(["snakemake", "--cores", "2", f"results/mini/vilbert_{chip}.csv"], cwd=repo, env_extra=standin_env(repo, era))
    rows = read_table(repo / f"results/mini/vilbert_{chip}.csv")
    measured = [r for r in rows if r["reproduced"]]
    assert {r["batch_size"] for r in measured if r["metric"] == "throughput"} == {"1", "4", "8", "16", "32", "64"}
    assert {r["verdict"] for r in measured if not r["claim_id"].startswith("vilbert.mini.")} <= {"NOT_COMPARABLE", "NO_CLAIM"}
    planted = {r["metric"]: r["verdict"] for r in measured if r["claim_id"].startswith("vilbert.mini.")}
    assert planted == {m: "REPRODUCED" for m in ("precision", "recall", "fscore", "vqa_score")}  # the stand-in chain too
    assert all("stand-in" in r["note"] for r in measured if r["verdict"] == "NOT_COMPARABLE")
    prov = json.loads((repo / f"results/mini/vilbert_{chip}.provenance.json").read_text())
    assert prov["run"]["standin"] is True and prov["run"]["toolchain"]["soc_version"] == f"Ascend{chip}"
    assert prov["run"]["toolchain"]["cann"] == {"current": "8.0.RC2", "2023": "6.0.1"}[era]  # from the version files
    outputs = repo / f"work/mini/vilbert/{chip}"
    assert (outputs.stat().st_mode & 0o777) == 0o750  # what ais_bench accepts as --output
    assert (repo / f"work/mini/vilbert/{chip}/model_bs64.om").read_bytes().startswith(b"ZOOREPRO-STANDIN-OM")
    cpu = {r["metric"]: float(r["reproduced"]) for r in read_table(repo / "results/mini/vilbert_cpu.csv")
           if r["kind"] == "accuracy" and r["reproduced"]}
    chip_acc = {r["metric"]: float(r["reproduced"]) for r in measured if r["kind"] == "accuracy"}
    assert chip_acc == pytest.approx(cpu, abs=1e-6)   # the stand-in runs the same ONNX on the CPU


def test_standin_iluvatar_tools_produce_the_mrv100_table_end_to_end(repo, tmp_path):
    """The document's IxRT steps (optimizer, ixrtexec build and perf at BS=16, ByteMLPerf
    perf_engine) through stand-ins, in a generated ByteMLPerf tree."""
    sys.path.insert(0, str(repo / "tests/standins/python"))
    from standin_bytemlperf import make_tree

    root = make_tree(tmp_path / "bytemlperf", repo / "work/mini/videobert/onnx/video-bert.onnx",
                     repo / "data/mini/videobert/cifar-100-python")
    env = {**standin_env(repo), "IXRT_PYTHON": sys.executable, "BYTEMLPERF_ROOT": str(root),
           "IXRT_OPTIMIZER": str(repo / "tests/standins/python/standin_ixrt_optimizer.py")}
    run(["snakemake", "--cores", "2", "results/mini/videobert_mrv100.csv"], cwd=repo, env_extra=env)
    rows = read_table(repo / "results/mini/videobert_mrv100.csv")
    measured = [r for r in rows if r["reproduced"] and r["claim_id"] != "videobert.mini.top1"]
    assert {r["verdict"] for r in measured} <= {"NOT_COMPARABLE", "NO_CLAIM"}
    assert next(r for r in rows if r["claim_id"] == "videobert.mini.top1")["verdict"] == "REPRODUCED"
    qps = next(r for r in rows if r["claim_id"] == "videobert.mrv100.throughput.bs4")
    assert qps["batch_size"] == "16" and "stand-in" in qps["note"]
    top1 = next(r for r in measured if r["metric"] == "top1")
    cpu_top1 = next(r for r in read_table(repo / "results/mini/videobert_cpu.csv") if r["metric"] == "top1")
    assert float(top1["reproduced"]) == pytest.approx(float(cpu_top1["reproduced"]))  # same ONNX, same data
    assert any(r["metric"].startswith("numeric_") for r in measured)
    # general_perf's numeric check is the one compare step, against the cpu target's logits
    compared = json.loads((repo / "work/mini/videobert/mrv100/compare.measurements.json").read_text())
    assert {r["metric"] for r in compared} >= {"numeric_max_diff", "parity_max_abs_logits_per_image",
                                               "parity_min_cosine_logits_per_image"}
    assert all(r["raw"] == ["work/mini/videobert/cpu/open_cifar.npy", "work/mini/videobert/mrv100/open_cifar.npy"]
               for r in compared)
    assert {r["metric"] for r in measured if r["kind"] == "parity"} == {r["metric"] for r in compared}
    prov = json.loads((repo / "results/mini/videobert_mrv100.provenance.json").read_text())
    assert prov["run"]["standin"] is True and prov["run"]["toolchain"]["backend"] == "ixrt"
    assert (repo / "work/mini/videobert/mrv100/model_bs16.engine").read_bytes().startswith(b"ZOOREPRO-STANDIN-ENGINE")


def test_audit_lists_all_27_document_claims_and_every_planted_claim_reproduced(repo):
    proc = run(["python", "-m", "zoorepro", "audit"], cwd=repo)
    claim_lines = [l for l in proc.stdout.splitlines() if l.startswith(("| vilbert.", "| videobert.", "| actbert."))]
    documents = [l for l in claim_lines if ".mini." not in l.split("|")[1]]
    planted = [l for l in claim_lines if ".mini." in l.split("|")[1]]
    assert len(documents) == 27
    assert all("NOT_COMPARABLE" in l for l in documents)  # every claim measured, none comparable at mini scale
    assert len(planted) == 10 and all("| REPRODUCED |" in l for l in planted)  # 4 ViLBERT, 1 VideoBERT, 5 ActBERT
    summary = run(["python", "-m", "zoorepro", "audit", "--summary", "--out", ""], cwd=repo).stdout
    for table, n in (("vilbert_cpu", 4), ("videobert_cpu", 1), ("actbert_cpu", 5)):
        block = summary.split(f"- results/mini/{table}.csv\n", 1)[1]
        assert block.startswith(f"  - planted claims: {n}/{n} REPRODUCED\n"), block[:200]


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
    in a table whose every row descends from the new opset-12 export."""
    import onnx

    params = repo / "params.yaml"
    original = params.read_text()
    command = [str(VENV_BIN / "snakemake"), "--cores", "2", "--rerun-incomplete", "results/mini/vilbert_cpu.csv"]
    try:
        params.write_text(original.replace("opset: 11", "opset: 12", 1))
        first = subprocess.Popen(command, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        killed = _kill_when_running(r"zoorepro\.vilbert\.fix_onnx \S*bs16_sim\.onnx")
        out = first.communicate(timeout=1200)[0]
        assert killed, out[-3000:]
        assert first.returncode != 0  # the killed job failed the run
        assert not (repo / "work/mini/vilbert/onnx/vqa-vilbert_bs16_sim_fix.onnx").exists()
        rerun = subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=1200)
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        assert "lineage: work/mini/vilbert/cpu/model_bs16.onnx removed, to be rebuilt" in rerun.stderr
        for bs in (1, 4, 8, 16, 32, 64):
            compiled = onnx.load(str(repo / f"work/mini/vilbert/cpu/model_bs{bs}.onnx"), load_external_data=False)
            assert {o.domain: o.version for o in compiled.opset_import}[""] == 12, bs
        rows = read_table(repo / "results/mini/vilbert_cpu.csv")
        assert {r["batch_size"] for r in rows if r["metric"] == "throughput"} == {"1", "4", "8", "16", "32", "64"}
        assert {r["verdict"] for r in rows if r["claim_id"].startswith("vilbert.mini.")} == {"REPRODUCED"}
    finally:
        params.write_text(original)
