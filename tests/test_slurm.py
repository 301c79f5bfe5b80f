"""The mini DAG on a real one-node SLURM cluster (zoorepro/slurm_cluster.py: Debian's slurm-wlm and
munge, started here as root without systemd), through Snakemake's SLURM executor plugin and
profiles/slurm, and its failure cases.

The SLURM run starts from a copy of the suite's one local cold build (conftest.mini_dag) with
every step's work (work/mini, results/mini) removed: the mini generators' data (data/mini) and the
patched sources (work/src) are kept, everything that builds the five mini tables from them runs
again, as SLURM jobs (bookkeeping steps as Snakemake local rules). Its tables equal the local
build's in every column that does not depend on timing (zoorepro.tablecheck.deterministic_rows).
A job cancelled by SLURM (scancel) mid-run is rerun by the next invocation and the tables end
identical; a step whose resources no node has fails with SLURM's own reason in Snakemake's message.

Skipped, with the reason, where no cluster can run (not root; SLURM not installed and no apt-get;
a slurm.conf or slurmctld that is not this test's). .ci/run installs the packages, so CI runs it.
"""
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import VENV_BIN, built_copy, copy_repo

from zoorepro import slurm_cluster
from zoorepro.tablecheck import deterministic_rows


def mini_tables() -> list[str]:
    from zoorepro.config import load_params, results_dir
    params = load_params()
    return [f"{results_dir('mini')}/{model}_{target}.csv"
            for model, targets in params["tables"]["mini"].items() for target in targets]


# Status checks every 2 s (the profile's 5 s suits a shared cluster; these jobs take seconds).
SNAKEMAKE = [str(VENV_BIN / "snakemake"), "--profile", "profiles/slurm",
             "--slurm-init-seconds-before-status-checks", "2"]


def env() -> dict:
    return dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")


def snakemake(repo: Path, *args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
    return subprocess.run([*SNAKEMAKE, *args], cwd=repo, env=env(), capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A running one-node cluster (its state dir); every daemon it started is stopped after the
    module, by PID, and checked gone."""
    reason = slurm_cluster.unavailable_reason()
    if reason:
        pytest.skip(f"no SLURM cluster on this machine: {reason}")
    try:
        slurm_cluster.install()
    except slurm_cluster.ClusterUnavailable as exc:
        pytest.skip(f"SLURM/munge could not be installed: {exc}")
    state = tmp_path_factory.mktemp("slurm")
    try:
        pids = slurm_cluster.start(state)
    except slurm_cluster.ClusterUnavailable as exc:
        pytest.skip(f"no SLURM cluster on this machine: {exc}")
    yield state
    stopped = slurm_cluster.stop(state)
    assert sorted(stopped) == sorted(pids.values())
    for pid in pids.values():
        assert not Path(f"/proc/{pid}").exists() or slurm_cluster._state_of(pid) == "Z", pid
    assert not slurm_cluster.CONF.exists()


@pytest.fixture(scope="module")
def slurm_run(cluster, mini_dag, tmp_path_factory):
    """Every mini table through `--executor slurm` (profiles/slurm), in a copy of the local build
    without its work/mini and results/mini: every step after the mini generators runs again."""
    import shutil
    repo = built_copy(mini_dag, tmp_path_factory.mktemp("slurm_dag") / "repo")
    for built in ("work/mini", "results/mini", "logs/mini"):
        shutil.rmtree(repo / built, ignore_errors=True)
    start = time.monotonic()
    proc = snakemake(repo, *mini_tables())
    wall = time.monotonic() - start
    (repo / "slurm_run.log").write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 0, f"SLURM run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return repo, proc.stdout + proc.stderr, wall


def test_the_mini_dag_runs_as_slurm_jobs_and_its_tables_equal_the_local_runs(slurm_run, mini_dag):
    repo, log, wall = slurm_run
    submitted = log.count("has been submitted with SLURM jobid")
    print(f"SLURM run of the mini tables: {wall:.0f} s, {submitted} SLURM jobs")
    assert submitted >= 30, log[-3000:]  # the heavy and chip steps were SLURM jobs...
    assert "localrule table:" in log  # ...the bookkeeping ones ran in Snakemake's own process
    assert "rule vilbert_mini_data:" not in log  # the generators' data came from the local build
    local = mini_dag
    for table in mini_tables():
        assert (repo / table).exists(), table
        assert deterministic_rows(repo / table) == deterministic_rows(local / table), table


def _running_job(rule: str, workdir: Path, timeout: float = 600) -> str | None:
    """The SLURM id of the first job of `rule` (the plugin's --comment rule_<name>) run from
    `workdir`, once it runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["squeue", "-h", "-t", "R", "-o", "%i|%Z|%k"], capture_output=True, text=True,
                             check=False).stdout
        for line in out.splitlines():
            jobid, cwd, comment = line.split("|", 2)
            if comment.startswith(f"rule_{rule}") and Path(cwd) == workdir:
                return jobid
        time.sleep(0.2)
    return None


def _processes_of(repo: Path, timeout: float = 30) -> dict[int, str]:
    """Processes still running a step of `repo` (Snakemake with its Snakefile, or any process whose
    working folder is `repo`) after `timeout` s; the test kills those (by PID) after recording them."""
    deadline = time.monotonic() + timeout
    while True:
        found = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != os.getpid():
                try:
                    cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    cwd = os.readlink(entry / "cwd")
                except OSError:
                    continue
                if f"{repo}/Snakefile" in cmd or Path(cwd) == repo:
                    found[int(entry.name)] = cmd[:300]
        if not found or time.monotonic() > deadline:
            break
        time.sleep(1)
    for pid in found:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return found


def _step_running(module: str, repo: Path, timeout: float = 600) -> bool:
    """True once a process runs `python -m <module>` in `repo` (the job's command itself started)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            try:
                if (entry.name.isdigit() and f"-m {module} " in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                        and Path(os.readlink(entry / "cwd")) == repo):
                    return True
            except OSError:
                continue
        time.sleep(0.2)
    return False


def test_a_job_scancelled_mid_run_is_rerun_by_the_next_invocation(slurm_run, tmp_path):
    """ClipBERT's cpu chain is rebuilt (its work and table removed) and its finetune, the longest
    step, is cancelled by SLURM while its torchrun processes run: the run fails naming SLURM's
    CANCELLED state, leaves no process behind and no table; the same command again reruns the
    finetune (its inference steps read the released mini checkpoint, so they are not rerun) and the
    table, which equals the first SLURM run's (itself equal to the local run's)."""
    import shutil
    built, _, _ = slurm_run
    repo = built_copy(built, tmp_path / "repo")
    table = "results/mini/clipbert_cpu.csv"
    before = deterministic_rows(repo / table)
    shutil.rmtree(repo / "work/mini/clipbert/cpu")
    (repo / table).unlink()
    first = subprocess.Popen([*SNAKEMAKE, table], cwd=repo, env=env(), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    jobid = _running_job("clipbert_run_video_qa", repo)
    if jobid and _step_running("zoorepro.clipbert.run_video_qa", repo):
        subprocess.run(["scancel", jobid], check=True)
    out = first.communicate(timeout=900)[0]
    assert jobid, f"the finetune never ran as a SLURM job:\n{out[-3000:]}"
    assert first.returncode != 0, out[-3000:]
    assert f"SLURM-job '{jobid}' failed, SLURM status is: 'CANCELLED'" in out, out[-3000:]
    left = _processes_of(repo)
    assert not left, f"processes of the cancelled job still alive: {left}"
    assert not (repo / table).exists()
    second = snakemake(repo, table)
    log = second.stdout + second.stderr
    assert second.returncode == 0, log[-3000:]
    assert "rule clipbert_run_video_qa:" in log and "localrule table:" in log  # rerun, not skipped
    assert deterministic_rows(repo / table) == before


def test_a_step_whose_resources_no_node_has_fails_with_slurms_reason(cluster, tmp_path):
    """More memory than the node has, and a chip (gres) it does not have: sbatch refuses each at
    submission, and Snakemake's error carries SLURM's reason and the sbatch call."""
    repo = copy_repo(tmp_path / "repo")
    node_mb = int(slurm_cluster.node_line()["RealMemory"])
    target = "data/mini/videobert/MANIFEST.json"  # the first step of the VideoBERT chain
    for setting, reason in [(f"videobert_mini_data:mem_mb={2 * node_mb}", "Requested node configuration is not available"),
                            ("videobert_mini_data:gres=npu:1", "Invalid generic resource (gres) specification")]:
        proc = snakemake(repo, target, "--set-resources", setting, timeout=600)
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0, out[-3000:]
        assert "SLURM sbatch failed" in out and reason in out, out[-3000:]
        assert not (repo / target).exists()


def test_the_cluster_script_refuses_a_slurm_conf_that_is_not_its_own(monkeypatch, tmp_path):
    """A real cluster's slurm.conf (no marker line) is never overwritten nor removed."""
    conf = tmp_path / "slurm.conf"
    conf.write_text("ClusterName=site\n")
    monkeypatch.setattr(slurm_cluster, "CONF", conf)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert "not ours" in slurm_cluster.unavailable_reason()
    with pytest.raises(slurm_cluster.ClusterUnavailable, match="not ours"):
        slurm_cluster.start(tmp_path / "state")
    assert conf.read_text() == "ClusterName=site\n"


def test_slurm_conf_describes_the_host_and_every_partition_params_name():
    from zoorepro.config import load_params
    params = load_params()
    parts = slurm_cluster.partitions_from_params(params)
    assert parts[0] == params["cluster"]["partitions"]["default"]
    assert {c["partition"] for c in params["cluster"]["chips"].values()} <= set(parts)
    node = {"NodeName": "n1", "CPUs": "8", "RealMemory": "16000"}
    text = slurm_cluster.slurm_conf(Path("/s"), node, parts)
    assert text.startswith(slurm_cluster.MARKER)
    assert "NodeName=n1 NodeAddr=127.0.0.1 CPUs=8 RealMemory=16000" in text
    assert "ProctrackType=proctrack/linuxproc" in text and "TaskPlugin=task/none" in text
    assert f"PartitionName={parts[0]} Nodes=n1 Default=YES" in text
    assert all(f"PartitionName={p} " in text for p in parts)


def _dry_resources(repo: Path, *targets: str) -> dict[str, str]:
    """rule -> the `resources:` line of its first job in a dry run."""
    proc = subprocess.run([str(VENV_BIN / "snakemake"), "-n", "--forceall", *targets], cwd=repo, env=env(),
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    jobs = {}
    for block in (proc.stdout + proc.stderr).split("\nrule ")[1:]:
        res = next((line.strip() for line in block.splitlines() if line.strip().startswith("resources:")), "")
        jobs.setdefault(block.split(":", 1)[0], res)
    return jobs


def test_chip_steps_ask_their_chip_and_partition_and_heavy_steps_size_memory_from_data(tmp_path):
    """Dry runs, no cluster needed: the ViLBERT 310P3 table's compile and perf jobs ask the
    partition and gres params give its hardware, other steps the default partition; the
    featurization's memory grows with its data (a 500 MB sparse file adds mem_per_input_mb x 500);
    a full-scale download runs in the network partition."""
    import yaml
    repo = copy_repo(tmp_path / "repo")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["cluster"]["chips"]["310P3"] = {"partition": "npu310", "gres": "npu:2"}
    params["cluster"]["partitions"] = {"default": "batch", "network": "dmz"}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True, sort_keys=False))
    jobs = _dry_resources(repo, "results/mini/vilbert_310P3.csv")
    for rule in ("vilbert_compile", "vilbert_perf"):
        assert "slurm_partition=npu310" in jobs[rule] and "gres=npu:2" in jobs[rule], jobs[rule]
    assert "slurm_partition=batch" in jobs["vilbert_onnxsim"] and "gres" not in jobs["vilbert_onnxsim"]
    base = params["cluster"]["base_mem_mb"]
    assert f"mem_mb={base}," in jobs["vilbert_preprocess"], jobs["vilbert_preprocess"]
    (repo / "data/mini/vilbert").mkdir(parents=True)
    with open(repo / "data/mini/vilbert/features.bin", "wb") as f:
        f.truncate(500 * 10**6)
    grown = base + int(params["cluster"]["mem_per_input_mb"] * 500)
    jobs = _dry_resources(repo, "work/mini/vilbert/preprocessed")
    assert f"mem_mb={grown}," in jobs["vilbert_preprocess"], jobs["vilbert_preprocess"]
    jobs = _dry_resources(repo, "data/full/vilbert/.done/vqa_val_questions")
    assert "slurm_partition=dmz" in jobs["download"], jobs
